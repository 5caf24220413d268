package handlers

import (
	"context"
	"embed"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/streams"
)

//go:embed lua/*.lua
var luaFS embed.FS

var (
	reserveScript = streams.MustScript(luaFS, "lua/reserve.lua")
	releaseScript = streams.MustScript(luaFS, "lua/release.lua")
	consumeScript = streams.MustScript(luaFS, "lua/consume.lua")
	chargeScript  = streams.MustScript(luaFS, "lua/charge.lua")
	refundScript  = streams.MustScript(luaFS, "lua/refund.lua")
	shipScript    = streams.MustScript(luaFS, "lua/ship.lua")
	cancelScript  = streams.MustScript(luaFS, "lua/cancel_shipment.lua")
)

// LoadScripts loads the domain's scripts so that they run by SHA.
func LoadScripts(ctx context.Context, rdb redis.UniversalClient) error {
	return streams.LoadScripts(ctx, rdb, reserveScript, releaseScript, consumeScript, chargeScript, refundScript, shipScript, cancelScript)
}
