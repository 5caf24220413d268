package streams

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/redis/go-redis/v9"
)

// MustScript reads an embedded Lua file. A missing file is a build defect,
// hence the panic; it happens at package initialisation, never on input.
func MustScript(fsys fs.FS, name string) *redis.Script {
	src, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic(fmt.Sprintf("embedded script %s: %v", name, err))
	}
	return redis.NewScript(string(src))
}

// LoadScripts loads scripts into Redis (SCRIPT LOAD) so that they run by SHA.
func LoadScripts(ctx context.Context, rdb redis.UniversalClient, scripts ...*redis.Script) error {
	for _, s := range scripts {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	return nil
}
