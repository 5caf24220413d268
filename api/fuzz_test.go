package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Any POST /orders body is either refused with a 400, 413 or 415 and an
// error code, or decodes into an order inside every limit of SPEC section 7.
// Nothing panics.
func FuzzDecodeOrder(f *testing.F) {
	f.Add("application/json", `{"customer_id":"c-1","items":[{"sku":"sku-1","quantity":2,"unit_price_cents":1250}]}`)
	f.Add("application/json", `{"customer_id":"c-1","items":[]}`)
	f.Add("application/json", `{"customer_id":"c-1","customer_id":"c-2","items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`)
	f.Add("application/json", `{"customer_id":"c 1","items":[{"sku":"a","quantity":1e3,"unit_price_cents":-1}]}`)
	f.Add("application/json; charset=utf-8", `{"customer_id":"c","items":[{"sku":"a","quantity":1,"unit_price_cents":1,"x":1}]} {}`)
	f.Add("text/plain", `{}`)
	f.Add("application/json", `[`+strings.Repeat(`{"sku":"a"},`, 10)+`]`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		var req orderRequest
		rerr := readJSON(httptest.NewRecorder(), r, &req)
		if rerr == nil {
			rerr = req.validate()
		}
		if rerr != nil {
			switch rerr.status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("refused with status %d", rerr.status)
			}
			if rerr.Code == "" || rerr.Message == "" {
				t.Fatalf("refusal without a code or message: %+v", rerr)
			}
			return
		}
		if len(body) > maxBody {
			t.Fatalf("accepted a body of %d bytes", len(body))
		}
		if !idRE.MatchString(req.CustomerID) || len(req.Items) < 1 || len(req.Items) > maxItems {
			t.Fatalf("accepted an order outside the limits: %+v", req)
		}
		seen := map[string]bool{}
		for _, it := range req.Items {
			if !idRE.MatchString(it.SKU) || seen[it.SKU] || it.Quantity < 1 || it.Quantity > maxQuantity ||
				it.UnitPriceCents < 0 || it.UnitPriceCents > maxUnitPrice {
				t.Fatalf("accepted an item outside the limits: %+v", it)
			}
			seen[it.SKU] = true
		}
	})
}
