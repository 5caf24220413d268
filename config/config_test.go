package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := LoadFrom(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != "redis://localhost:6379/0" || c.Prefix != "saga" || c.Partitions != 1 || c.Mode != "choreography" ||
		c.HTTPAddr != ":8080" || len(c.Services) != 1 || c.Services[0] != "all" || c.StepTimeout != 30*time.Second || c.SagaRetention != 168*time.Hour ||
		c.PaymentLimitCents != 100000 || c.ShippingMaxUnits != 1000 {
		t.Fatalf("defaults: %+v", c)
	}
}

// Every problem is reported at once, each naming its variable.
func TestErrorsNameTheVariable(t *testing.T) {
	_, err := LoadFrom(map[string]string{
		"SAGA_PARTITIONS": "x", "CLAIM_MIN_IDLE": "later",
	})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "SAGA_PARTITIONS") || !strings.Contains(err.Error(), "CLAIM_MIN_IDLE") {
		t.Fatalf("parse errors: %v", err)
	}
	_, err = LoadFrom(map[string]string{
		"WORKER_SERVICES": "payment, shipping ,no pe", "SHIPPING_FAILURE_RATE": "-0.1", "MAX_DELIVERIES": "0",
	})
	for _, name := range []string{"WORKER_SERVICES", "SHIPPING_FAILURE_RATE", "MAX_DELIVERIES"} {
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("validation error %v does not name %s", err, name)
		}
	}
	c, err := LoadFrom(map[string]string{"WORKER_SERVICES": " payment, shipping"})
	if err != nil || c.Services[0] != "payment" || c.Services[1] != "shipping" {
		t.Fatalf("spaces around service names: %v %v", c, err)
	}
}

// A token that could not be sent in an Authorization header is refused,
// and the error never repeats it.
func TestAdminToken(t *testing.T) {
	for _, tok := range []string{"has space", "tab\there", "caf\u00e9-secret", strings.Repeat("x", 257)} {
		_, err := LoadFrom(map[string]string{"ADMIN_TOKEN": tok})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "ADMIN_TOKEN") || strings.Contains(err.Error(), tok) {
			t.Errorf("ADMIN_TOKEN %q: %v", tok, err)
		}
	}
	c, err := LoadFrom(map[string]string{"ADMIN_TOKEN": "s3cret-Token_42/+="})
	if err != nil || c.AdminToken != "s3cret-Token_42/+=" {
		t.Fatalf("a good token: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	got := RedactURL("redis://user:s3cret@host:6379/0")
	if strings.Contains(got, "s3cret") {
		t.Fatalf("password in %q", got)
	}
}
