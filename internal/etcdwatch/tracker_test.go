package etcdwatch

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestTracker(t *testing.T) {
	hdr := func(id uint64, rev int64) *pb.ResponseHeader { return &pb.ResponseHeader{ClusterId: id, Revision: rev} }
	for _, tc := range []struct {
		name string
		seen int64 // Seen before the headers
		hdrs []*pb.ResponseHeader
		want []string // Observe's error for each header, "" for nil
	}{
		{"same cluster, growing", 0, []*pb.ResponseHeader{hdr(1, 5), hdr(1, 5), hdr(1, 9)}, []string{"", "", ""}},
		{"cluster changed", 0, []*pb.ResponseHeader{hdr(1, 5), hdr(2, 9), hdr(2, 10)},
			[]string{"", "etcd: cluster changed (id 1 -> 2, revision 5 -> 9)", ""}},
		{"revision backwards", 0, []*pb.ResponseHeader{hdr(0xa, 42), hdr(0xa, 3), hdr(0xa, 4)},
			[]string{"", "etcd: revision went backwards (42 -> 3) in cluster a: wiped or restored from a backup", ""}},
		{"below a listed revision", 42, []*pb.ResponseHeader{hdr(0xa, 3)},
			[]string{"etcd: revision went backwards (42 -> 3) in cluster a: wiped or restored from a backup"}},
		{"nil and zero fields not checked", 42, []*pb.ResponseHeader{nil, hdr(0, 0), hdr(7, 0), hdr(7, 42)}, []string{"", "", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr Tracker
			tr.Seen(tc.seen)
			for i, h := range tc.hdrs {
				err := tr.Observe(h)
				got := ""
				if err != nil {
					got = err.Error()
					if _, ok := errors.AsType[*ReplacedError](err); !ok {
						t.Errorf("Observe(%v) = %T; want *ReplacedError", h, err)
					}
				}
				if got != tc.want[i] {
					t.Errorf("Observe(%v) #%d = %q; want %q", h, i, got, tc.want[i])
				}
			}
		})
	}
}
