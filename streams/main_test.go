package streams_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/streamsaga/streamsaga/internal/redistest"
)

var srv *redistest.Server

func TestMain(m *testing.M) {
	var err error
	srv, err = redistest.Start(redistest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	srv.Close()
	os.Exit(code)
}
