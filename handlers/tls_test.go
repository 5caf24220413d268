package handlers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/streams"
)

// writeCerts makes a self-signed CA and a certificate for 127.0.0.1 signed
// by it, as PEM files in dir.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "streamsaga test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("redis.pem", "CERTIFICATE", srvDER), write("redis.key", "EC PRIVATE KEY", keyDER)
}

// The product runs over rediss:// against a Redis with a self-signed
// certificate, trusted through REDIS_TLS_CA_FILE; without it the
// certificate is refused, so verification is really on. The API and the
// worker reach Redis only through its TLS port, where a plain connection
// cannot talk.
func TestRunsOverTLS(t *testing.T) {
	t.Parallel()
	ca, cert, key := writeCerts(t, t.TempDir())
	tlsPort, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	rs := redistest.StartT(t, redistest.Options{Args: []string{"--tls-port", strconv.Itoa(tlsPort),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"}})
	url := "rediss://127.0.0.1:" + strconv.Itoa(tlsPort) + "/0"
	ctx := context.Background()
	untrusted, err := streams.Connect(url, streams.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := untrusted.Ping(ctx).Err(); err == nil {
		t.Fatal("a self-signed certificate was accepted without REDIS_TLS_CA_FILE")
	}
	untrusted.Close()

	s := sagatest.New(t, rs, map[string]string{"REDIS_URL": url, "REDIS_TLS_CA_FILE": ca})
	s.StartAPI(nil)
	s.StartWorker(nil)
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-tls", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{o}, 20*time.Second)
	s.MustOutcomes([]sagatest.Placed{o}, []string{"COMPLETED"})
}
