package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/streamsaga/streamsaga/handlers"
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Limits of an order (SPEC section 7).
const (
	maxItems     = 100
	maxQuantity  = 10000
	maxUnitPrice = 100000000
	maxIdemKey   = 128
)

type orderRequest struct {
	CustomerID string        `json:"customer_id"`
	Items      []itemRequest `json:"items"`
}

type itemRequest struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// validate checks an order; the first problem wins.
func (o *orderRequest) validate() *requestError {
	if !idRE.MatchString(o.CustomerID) {
		return badRequest("invalid_id", "customer_id", "customer_id must be 1-64 characters of [A-Za-z0-9._-]")
	}
	if len(o.Items) == 0 {
		return badRequest("items_required", "items", "items must hold at least one item")
	}
	if len(o.Items) > maxItems {
		return badRequest("too_many_items", "items", fmt.Sprintf("at most %d items", maxItems))
	}
	seen := make(map[string]bool, len(o.Items))
	for i, it := range o.Items {
		field := fmt.Sprintf("items[%d]", i)
		if !idRE.MatchString(it.SKU) {
			return badRequest("invalid_id", field+".sku", "sku must be 1-64 characters of [A-Za-z0-9._-]")
		}
		if seen[it.SKU] {
			return badRequest("duplicate_sku", field+".sku", "each sku may appear once per order")
		}
		seen[it.SKU] = true
		if it.Quantity < 1 || it.Quantity > maxQuantity {
			return badRequest("quantity_out_of_range", field+".quantity", fmt.Sprintf("quantity must be 1-%d", maxQuantity))
		}
		if it.UnitPriceCents < 0 || it.UnitPriceCents > maxUnitPrice {
			return badRequest("price_out_of_range", field+".unit_price_cents", fmt.Sprintf("unit_price_cents must be 0-%d", maxUnitPrice))
		}
	}
	return nil
}

func (o *orderRequest) items() []handlers.Item {
	out := make([]handlers.Item, len(o.Items))
	for i, it := range o.Items {
		out[i] = handlers.Item{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents}
	}
	return out
}

// fingerprint identifies the request's content independently of its
// formatting, so a retry that re-serialises the same order still matches.
func (o *orderRequest) fingerprint() string {
	b, _ := json.Marshal(o)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// validIdempotencyKey: 1-128 printable ASCII characters, no spaces.
func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > maxIdemKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}
