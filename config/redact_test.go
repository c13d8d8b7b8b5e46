package config

import "testing"

func TestRedact(t *testing.T) {
	tests := []struct{ key, in, want string }{
		{"admin.token", "s3cret", "[redacted]"},
		{"etcd.password", "", ""},
		{"etcd.endpoints", "http://10.0.0.1:2379,http://10.0.0.2:2379", "http://10.0.0.1:2379,http://10.0.0.2:2379"},
		{"etcd.endpoints", "http://root:pw@10.0.0.1:2379, https://u:p@h:1", "http://root:[redacted]@10.0.0.1:2379, https://u:[redacted]@h:1"},
		{"db.url", "postgres://app:hunter2@db:5432/orders?sslmode=disable", "postgres://app:[redacted]@db:5432/orders?sslmode=disable"},
		{"db.url", "postgres://db/orders?user=app&password=hunter2", "postgres://db/orders?user=app&password=[redacted]"},
		{"db.dsn", "host=db user=app password=hunter2 dbname=orders", "host=db user=app password=[redacted] dbname=orders"},
		{"db.dsn", "app:hunter2@tcp(db:3306)/orders", "app:[redacted]@tcp(db:3306)/orders"},
		{"mail.from", "ops@example.com", "ops@example.com"},
		{"hello.greeting", "hello", "hello"},
		{"x.y", "a=b", "a=b"},
		{"x.y", "api_key=abc", "api_key=[redacted]"},
	}
	for _, tt := range tests {
		if got := Redact(tt.key, tt.in); got != tt.want {
			t.Errorf("Redact(%q, %q) = %q; want %q", tt.key, tt.in, got, tt.want)
		}
	}
}
