package devrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

type demoOrder struct {
	path  string
	body  map[string]any
	want  string
	steps string
}

func call(ctx context.Context, method, url string, body, out any) (int, error) {
	return callAs(ctx, "", method, url, body, out)
}

// callAs calls the API with token as its bearer token when not empty (the
// admin actions need it when ADMIN_TOKEN is set).
func callAs(ctx context.Context, token, method, url string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func item(sku string, qty, price int) map[string]any {
	return map[string]any{"sku": sku, "quantity": qty, "unit_price_cents": price}
}

// runDemo places one order of each path and prints how each ended; token
// is ADMIN_TOKEN, which setting the stock needs when it is set.
func runDemo(ctx context.Context, base, token string, out io.Writer) error {
	for sku, n := range map[string]int{"sku-1": 100, "sku-scarce": 1, "sku-bulk": 5000} {
		code, err := callAs(ctx, token, "PUT", base+"/inventory/"+sku, map[string]int{"available": n}, nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%w: PUT /inventory/%s: %d", ErrDemoFailed, sku, code)
		}
	}
	orders := []demoOrder{
		{"happy path", map[string]any{"customer_id": "c-1", "items": []any{item("sku-1", 2, 1250)}}, "COMPLETED", ""},
		{"payment declined", map[string]any{"customer_id": "c-2", "items": []any{item("sku-1", 1, 150000)}}, "CANCELLED", ""},
		{"out of stock", map[string]any{"customer_id": "c-3", "items": []any{item("sku-scarce", 2, 500)}}, "CANCELLED", ""},
		{"shipment failed", map[string]any{"customer_id": "c-4", "items": []any{item("sku-bulk", 1001, 10)}}, "CANCELLED", ""},
	}
	ids := make([]string, len(orders))
	for i, o := range orders {
		var a struct {
			OrderID string `json:"order_id"`
		}
		code, err := call(ctx, "POST", base+"/orders", o.body, &a)
		if err != nil || code != http.StatusAccepted {
			return fmt.Errorf("%w: POST /orders for %s: %d %v", ErrDemoFailed, o.path, code, err)
		}
		ids[i] = a.OrderID
	}
	fmt.Fprintln(out, "\ndemo: one order of each path")
	failed := false
	for i, o := range orders {
		var v struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
			SagaID string `json:"saga_id"`
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, err := call(ctx, "GET", base+"/orders/"+ids[i], nil, &v); err != nil {
				return err
			}
			if v.Status != "PENDING" || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		var s struct {
			Steps []struct{ Name, Status string }
		}
		call(ctx, "GET", base+"/sagas/"+v.SagaID, nil, &s)
		var steps []string
		for _, st := range s.Steps {
			steps = append(steps, st.Name+"="+st.Status)
		}
		mark := "ok"
		if v.Status != o.want {
			mark, failed = "UNEXPECTED", true
		}
		fmt.Fprintf(out, "  %-17s %-10s %-3s %s\n  %17s %s\n", o.path, v.Status, mark, orEmpty(v.Reason), "", strings.Join(steps, " "))
	}
	if failed {
		return ErrDemoFailed
	}
	return nil
}

func orEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
