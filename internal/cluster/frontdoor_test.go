package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestFrontDoorPortsComeFromTheEnvironmentAndAreChecked(t *testing.T) {
	t.Setenv("LOCAL_HTTP_PORT", "")
	t.Setenv("LOCAL_HTTPS_PORT", "")
	o, err := OptionsFromEnv(t.TempDir())
	if err != nil || o.HTTPPort != 8080 || o.HTTPSPort != 8443 || o.HTTPPortAsked || o.HTTPSPortAsked {
		t.Fatalf("defaults: %d %d asked %v %v, %v", o.HTTPPort, o.HTTPSPort, o.HTTPPortAsked, o.HTTPSPortAsked, err)
	}
	t.Setenv("LOCAL_HTTP_PORT", "9080")
	if o, err = OptionsFromEnv(t.TempDir()); err != nil || o.HTTPPort != 9080 || !o.HTTPPortAsked {
		t.Errorf("LOCAL_HTTP_PORT=9080: %d %v, %v", o.HTTPPort, o.HTTPPortAsked, err)
	}
	for _, bad := range []string{"http", "0", "65536"} {
		t.Setenv("LOCAL_HTTP_PORT", bad)
		if _, err := OptionsFromEnv(t.TempDir()); err == nil || !strings.Contains(err.Error(), "LOCAL_HTTP_PORT") {
			t.Errorf("LOCAL_HTTP_PORT=%s: %v", bad, err)
		}
	}
	t.Setenv("LOCAL_HTTP_PORT", "8443")
	if _, err := OptionsFromEnv(t.TempDir()); err == nil || !strings.Contains(err.Error(), "two ports") {
		t.Errorf("both ports 8443: %v", err)
	}
}

// TestATakenDefaultPortGivesWayButATakenChosenPortIsAnError holds a port, then asks for it
// as the default (a free one replaces it, and the user is told) and as LOCAL_HTTP_PORT (refused).
func TestATakenDefaultPortGivesWayButATakenChosenPortIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	var out bytes.Buffer
	o := Options{HTTPPort: taken, HTTPSPort: freePort(t), Out: &out}
	if err := choosePorts(&o); err != nil {
		t.Fatal(err)
	}
	if o.HTTPPort == taken || o.HTTPPort == 0 {
		t.Errorf("the taken default %d was kept (%d)", taken, o.HTTPPort)
	}
	if !strings.Contains(out.String(), "127.0.0.1:"+strconv.Itoa(taken)+" is taken") || !strings.Contains(out.String(), "LOCAL_HTTP_PORT") {
		t.Errorf("the user is not told: %q", out.String())
	}
	o = Options{HTTPPort: taken, HTTPPortAsked: true, HTTPSPort: freePort(t), Out: &out}
	if err := choosePorts(&o); err == nil || !strings.Contains(err.Error(), "LOCAL_HTTP_PORT="+strconv.Itoa(taken)) {
		t.Errorf("a taken LOCAL_HTTP_PORT: %v", err)
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestTheNodeMapsOnlyTheFrontDoorsTwoPortsOnLoopback(t *testing.T) {
	c := clusterConfig(Options{Gateway: GatewayTraefik, HTTPPort: 8080, HTTPSPort: 8443})
	m := c.Nodes[0].ExtraPortMappings
	if len(m) != 2 || m[0].ContainerPort != nodePortHTTP || m[0].HostPort != 8080 || m[1].ContainerPort != nodePortHTTPS ||
		m[1].HostPort != 8443 || m[0].ListenAddress != "127.0.0.1" || m[1].ListenAddress != "127.0.0.1" {
		t.Errorf("port mappings = %+v", m)
	}
	if m := clusterConfig(Options{Gateway: GatewayNone}).Nodes[0].ExtraPortMappings; len(m) != 0 {
		t.Errorf("LOCAL_GATEWAY=none maps %+v", m)
	}
}

func TestTheFrontDoorAnnotationRoundTrips(t *testing.T) {
	f := FrontDoor{HTTP: 8080, HTTPS: 8443}
	if got := ParseFrontDoor(f.String()); got != f {
		t.Errorf("ParseFrontDoor(%q) = %+v", f.String(), got)
	}
	for _, bad := range []string{"", "http=8080", "http=x,https=1", "30080"} {
		if got := ParseFrontDoor(bad); got != (FrontDoor{}) {
			t.Errorf("ParseFrontDoor(%q) = %+v, want none", bad, got)
		}
	}
}

// TestTraefikManifestRendersWithTheImageAndItsNodePorts: every object of traefik.yaml decodes,
// the Deployment runs the image given, and the Service's node ports are the ones kind maps.
func TestTraefikManifestRendersWithTheImageAndItsNodePorts(t *testing.T) {
	objs, err := traefikObjects("localhost:5001/dtap-gateway/traefik:abc")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	var all strings.Builder
	for _, o := range objs {
		kinds[o.GetKind()+"/"+o.GetName()] = true
		b, _ := o.MarshalJSON()
		all.Write(b)
	}
	for _, want := range []string{"Deployment/traefik", "Service/traefik", "IngressClass/traefik", "GatewayClass/traefik",
		"Gateway/" + GatewayName, "ClusterRole/dtap-front-door", "ConfigMap/traefik-dynamic"} {
		if !kinds[want] {
			t.Errorf("no %s in %v", want, kinds)
		}
	}
	for _, want := range []string{`"image":"localhost:5001/dtap-gateway/traefik:abc"`, `"nodePort":30080`, `"nodePort":30443`,
		`"--global.checkNewVersion=false"`, `"--accesslog=true"`, `"readOnlyRootFilesystem":true`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("the manifest lacks %s", want)
		}
	}
}

// TestTheLocalCAIssuesForLocalhostOnlyAndKeepsAGoodCertificate runs ensureCertificates against
// a fake API server (no cluster is needed to check X.509): the certificate names every
// environment, verifies against the CA, and a second run keeps it; the CA cannot sign for names
// outside localhost.
func TestTheLocalCAIssuesForLocalhostOnlyAndKeepsAGoodCertificate(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	caPEM, changed, err := ensureCertificates(ctx, cs, []string{"dev.localhost", "test.localhost"})
	if err != nil || !changed {
		t.Fatalf("first run: %v, wrote the certificate: %v", err, changed)
	}
	ca, err := parseCert(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	sec, err := cs.CoreV1().Secrets(GatewayNamespace).Get(ctx, tlsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := parseCert(sec.Data["tls.crt"])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"api.dev.localhost", "status.test.localhost", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "api.staging.localhost"}); err == nil {
		t.Error("the certificate names an environment it was not asked for")
	}
	// A certificate the CA signs for a real name fails verification: the CA is constrained.
	_, key, _, err := loadCA(ctx, cs.CoreV1().Secrets(GatewayNamespace))
	if err != nil {
		t.Fatal(err)
	}
	evilPEM, _, err := issue(ca, key, []string{"example.com"})
	if err != nil {
		t.Fatal(err)
	}
	evil, _ := parseCert(evilPEM)
	if _, err := evil.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.com"}); err == nil {
		t.Error("the local CA can sign for example.com")
	}
	// A second run keeps the certificate; a new environment reissues it with the same CA.
	if again, changed, err := ensureCertificates(ctx, cs, []string{"dev.localhost", "test.localhost"}); err != nil || !bytes.Equal(again, caPEM) || changed {
		t.Fatalf("second run: %v, same CA %v, rewrote the certificate %v", err, bytes.Equal(again, caPEM), changed)
	}
	sec2, _ := cs.CoreV1().Secrets(GatewayNamespace).Get(ctx, tlsSecret, metav1.GetOptions{})
	if !bytes.Equal(sec2.Data["tls.crt"], sec.Data["tls.crt"]) {
		t.Error("a good certificate was reissued")
	}
	if _, changed, err := ensureCertificates(ctx, cs, []string{"dev.localhost", "test.localhost", "staging.localhost"}); err != nil || !changed {
		t.Fatalf("a new environment: %v, reissued %v", err, changed)
	}
	sec3, _ := cs.CoreV1().Secrets(GatewayNamespace).Get(ctx, tlsSecret, metav1.GetOptions{})
	leaf3, _ := parseCert(sec3.Data["tls.crt"])
	if _, err := leaf3.Verify(x509.VerifyOptions{Roots: pool, DNSName: "api.staging.localhost"}); err != nil {
		t.Errorf("after staging was added: %v", err)
	}
	// A deploy of another project adds its domain and keeps every name the certificate had.
	if _, err := EnsureCertificateNames(ctx, cs, FrontDoor{}, []string{"staging.shop.localhost"}); err != nil {
		t.Fatal(err)
	}
	sec4, _ := cs.CoreV1().Secrets(GatewayNamespace).Get(ctx, tlsSecret, metav1.GetOptions{})
	leaf4, _ := parseCert(sec4.Data["tls.crt"])
	for _, host := range []string{"api.staging.shop.localhost", "api.dev.localhost", "api.staging.localhost"} {
		if _, err := leaf4.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("after another project's deploy, %s: %v", host, err)
		}
	}
}

// TestLoopbackClientReachesDotLocalhostOnLoopback: Go's resolver asks DNS for *.localhost; the
// client dials 127.0.0.1 for it, as curl and browsers do, and keeps the Host header.
func TestLoopbackClientReachesDotLocalhostOnLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Host)) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c, err := LoopbackClient(nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get("http://api.dev.localhost:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if b.String() != "api.dev.localhost:"+port {
		t.Errorf("Host = %q", b.String())
	}
	if _, err := LoopbackClient([]byte("not a certificate"), time.Second); err == nil {
		t.Error("a CA file without a certificate is accepted")
	}
}

// TestADeployWaitsUntilTheFrontDoorServesTheNewCertificate: a TLS server on the loopback serves
// the old certificate (no name under the new domain) until it "reloads", as Traefik does a few
// seconds after its Secret changes; the wait returns once the new one verifies, and a server
// that never reloads makes it fail with the reason, instead of leaving https URLs that fail.
func TestADeployWaitsUntilTheFrontDoorServesTheNewCertificate(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	caPEM, _, err := ensureCertificates(ctx, cs, []string{"dev.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	ca, key, _, err := loadCA(ctx, cs.CoreV1().Secrets(GatewayNamespace))
	if err != nil {
		t.Fatal(err)
	}
	pair := func(hosts ...string) *tls.Certificate {
		certPEM, keyPEM, err := issue(ca, key, hosts)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	old, renewed := pair("localhost", "*.dev.localhost"), pair("localhost", "*.dev.localhost", "*.dev.shop.localhost")
	var reloaded atomic.Bool
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if reloaded.Load() {
			return renewed, nil
		}
		return old, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	door := FrontDoor{HTTPS: ln.Addr().(*net.TCPAddr).Port}

	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	err = waitCertificateServed(short, door, caPEM, []string{"dev.shop.localhost"})
	if err == nil || !strings.Contains(err.Error(), "not valid for") && !strings.Contains(err.Error(), "is valid for") {
		t.Fatalf("a front door serving the old certificate: %v, want the name mismatch", err)
	}
	time.AfterFunc(700*time.Millisecond, func() { reloaded.Store(true) })
	start := time.Now()
	if err := waitCertificateServed(ctx, door, caPEM, []string{"dev.shop.localhost", "dev.localhost"}); err != nil {
		t.Fatal(err)
	}
	if !reloaded.Load() {
		t.Fatal("the wait returned before the new certificate was served")
	}
	t.Logf("served after %s", time.Since(start).Round(10*time.Millisecond))
}
