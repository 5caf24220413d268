package api_test

import (
	"os"
	"testing"

	"github.com/streamsaga/streamsaga/internal/redistest"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.RunMain(m, &srv, redistest.Options{})) }
