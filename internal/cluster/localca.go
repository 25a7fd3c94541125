package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The front door's HTTPS: a CA of the cluster's own, which can sign only names under
// localhost (an X.509 name constraint), so that trusting it for the embedded cluster trusts it
// for nothing else; and a certificate for localhost, *.localhost and *.<domain> of each domain
// (LocalDomain of every environment). Both live in the cluster (GatewayNamespace): they go with kind:down.

// certHosts are the names the front door's certificate holds.
func certHosts(domains []string) []string {
	hosts := []string{"localhost", "*.localhost"}
	for _, d := range domains {
		hosts = append(hosts, "*."+d)
	}
	return hosts
}

// EnsureCertificateNames makes the front door's certificate name *.<domain> of each domain too
// (a deploy of a project whose domains kind:up did not know), keeping every name it has. When it
// changed the certificate, it waits until the front door (door) serves the new one: Traefik
// reloads a Secret a moment after it changes (under a second here), and until then an https URL
// of the new domain fails. It returns the CA certificate (PEM).
func EnsureCertificateNames(ctx context.Context, cs kubernetes.Interface, door FrontDoor, domains []string) ([]byte, error) {
	ca, changed, err := ensureCertificates(ctx, cs, domains)
	if err != nil || !changed || door.HTTPS == 0 {
		return ca, err
	}
	return ca, waitCertificateServed(ctx, door, ca, domains)
}

// waitCertificateServed waits until a TLS handshake with the front door, for a host under each
// domain, verifies against the CA alone.
func waitCertificateServed(ctx context.Context, door FrontDoor, caPEM []byte, domains []string) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("the front door's CA holds no PEM certificate")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(door.HTTPS))
	var last error
	err := poll(ctx, 60*time.Second, "the front door to serve its new certificate", func() (bool, error) {
		for _, d := range domains {
			dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second},
				Config: &tls.Config{RootCAs: pool, ServerName: "probe." + d, MinVersion: tls.VersionTLS12}}
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				last = err
				return false, nil
			}
			conn.Close()
		}
		return true, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w: %v", err, last)
	}
	return err
}

// ensureCertificates creates the CA once and (re)issues the certificate when it is missing,
// lacks one of the domains' names, is about to expire or was signed by another CA; a reissued
// certificate keeps the names the old one had. Two runs at once do not lose each other's names:
// the update is conditional on the version read, and retried. It returns the CA (PEM) and
// whether it wrote the certificate.
func ensureCertificates(ctx context.Context, cs kubernetes.Interface, domains []string) ([]byte, bool, error) {
	secrets := cs.CoreV1().Secrets(GatewayNamespace)
	caCert, caKey, caPEM, err := loadCA(ctx, secrets)
	if err != nil {
		return nil, false, err
	}
	if caCert == nil {
		if caCert, caKey, caPEM, err = newCA(ctx, secrets); err != nil {
			return nil, false, err
		}
	}
	for attempt := 0; ; attempt++ {
		hosts := certHosts(domains)
		cur, err := secrets.Get(ctx, tlsSecret, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, false, err
		}
		exists := err == nil
		if exists {
			if certGood(cur.Data[corev1.TLSCertKey], caCert, hosts) {
				return caPEM, false, nil
			}
			if old, err := parseCert(cur.Data[corev1.TLSCertKey]); err == nil && old.CheckSignatureFrom(caCert) == nil {
				for _, h := range old.DNSNames {
					if !slices.Contains(hosts, h) {
						hosts = append(hosts, h)
					}
				}
			}
		}
		certPEM, keyPEM, err := issue(caCert, caKey, hosts)
		if err != nil {
			return nil, false, err
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tlsSecret, Namespace: GatewayNamespace}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
		if exists {
			s.ResourceVersion = cur.ResourceVersion
			_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		} else {
			_, err = secrets.Create(ctx, s, metav1.CreateOptions{})
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
			continue // another run wrote it meanwhile: start again from its version
		}
		if err != nil {
			return nil, false, fmt.Errorf("store the front door's certificate: %w", err)
		}
		return caPEM, true, nil
	}
}

type secretClient interface {
	Get(context.Context, string, metav1.GetOptions) (*corev1.Secret, error)
	Create(context.Context, *corev1.Secret, metav1.CreateOptions) (*corev1.Secret, error)
}

func loadCA(ctx context.Context, secrets secretClient) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	s, err := secrets.Get(ctx, caSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := parseCert(s.Data["ca.crt"])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("secret %s/%s: %w (delete it and run kind:up again)", GatewayNamespace, caSecret, err)
	}
	block, _ := pem.Decode(s.Data["ca.key"])
	if block == nil {
		return nil, nil, nil, fmt.Errorf("secret %s/%s has no ca.key (delete it and run kind:up again)", GatewayNamespace, caSecret)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, s.Data["ca.crt"], nil
}

func newCA(ctx context.Context, secrets secretClient) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:                serial,
		Subject:                     pkix.Name{CommonName: fmt.Sprintf("dtap embedded cluster CA %x", serial.Bytes()[:4]), Organization: []string{"dtap local"}},
		NotBefore:                   time.Now().Add(-time.Hour),
		NotAfter:                    time.Now().AddDate(10, 0, 0),
		IsCA:                        true,
		BasicConstraintsValid:       true,
		MaxPathLenZero:              true,
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	_, err = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: caSecret, Namespace: GatewayNamespace},
		Data: map[string][]byte{"ca.crt": caPEM, "ca.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) { // another kind:up made it first: use that one
		return loadCA(ctx, secrets)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store the front door's CA: %w", err)
	}
	return cert, key, caPEM, nil
}

// issue signs a server certificate for hosts, valid for a year.
func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "*.localhost"},
		DNSNames:     hosts,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// certGood: the certificate is signed by ca, names every host and has a month left.
func certGood(certPEM []byte, ca *x509.Certificate, hosts []string) bool {
	cert, err := parseCert(certPEM)
	if err != nil || cert.CheckSignatureFrom(ca) != nil || time.Until(cert.NotAfter) < 30*24*time.Hour {
		return false
	}
	for _, h := range hosts {
		if !slices.Contains(cert.DNSNames, h) {
			return false
		}
	}
	return true
}

func parseCert(p []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(bytes.TrimSpace(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
