package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
)

// ErrUnknownKey says a token names a key id that is not in the key set: a key
// that was never published, or one rotated out after its tokens expired.
var ErrUnknownKey = errors.New("authn: unknown signing key")

// KeyID is the RFC 7638 JWK thumbprint of an Ed25519 public key. Deriving the kid
// from the key means no operator has to invent ids, and two keys never share one.
func KeyID(pub ed25519.PublicKey) string {
	// The members in lexicographic order, no whitespace (RFC 7638 section 3.2).
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SigningKey is auth's private key with its key id.
type SigningKey struct {
	ID      string
	Private ed25519.PrivateKey
}

// NewSigningKey wraps a private key.
func NewSigningKey(priv ed25519.PrivateKey) SigningKey {
	return SigningKey{ID: KeyID(priv.Public().(ed25519.PublicKey)), Private: priv}
}

// Public returns the public half.
func (k SigningKey) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// GenerateSigningKey makes a fresh key (tests, development).
func GenerateSigningKey() (SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("authn: generate key: %w", err)
	}
	return NewSigningKey(priv), nil
}

// MarshalPrivateKeyPEM encodes a private key as a PKCS #8 "PRIVATE KEY" PEM block,
// the format `openssl genpkey -algorithm ed25519` writes.
func MarshalPrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("authn: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM reads one Ed25519 private key from a PKCS #8 PEM block.
func ParsePrivateKeyPEM(data []byte) (SigningKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return SigningKey{}, errors.New(`authn: expected a PEM "PRIVATE KEY" block (openssl genpkey -algorithm ed25519)`)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return SigningKey{}, fmt.Errorf("authn: private key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return SigningKey{}, fmt.Errorf("authn: private key is %T, want Ed25519", key)
	}
	return NewSigningKey(priv), nil
}

// ParsePublicKeysPEM reads every Ed25519 key in data: "PUBLIC KEY" (PKIX) blocks, and
// "PRIVATE KEY" blocks of which only the public half is kept. It serves the previous
// keys of a rotation, which auth still publishes and accepts but never signs with.
func ParsePublicKeysPEM(data []byte) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		switch block.Type {
		case "PUBLIC KEY":
			key, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("authn: public key: %w", err)
			}
			pub, ok := key.(ed25519.PublicKey)
			if !ok {
				return nil, fmt.Errorf("authn: public key is %T, want Ed25519", key)
			}
			out = append(out, pub)
		case "PRIVATE KEY":
			k, err := ParsePrivateKeyPEM(pem.EncodeToMemory(block))
			if err != nil {
				return nil, err
			}
			out = append(out, k.Public())
		default:
			return nil, fmt.Errorf("authn: unexpected PEM block %q", block.Type)
		}
	}
}

// maxKeys bounds a key set, so a hostile or broken JWKS endpoint cannot make a
// verifier hold an unbounded map.
const maxKeys = 32

// KeySet is an immutable set of Ed25519 public keys by key id; it is also a
// KeySource that never fetches.
type KeySet struct {
	ids  []string
	keys map[string]ed25519.PublicKey
}

// NewKeySet builds a set; the first key is listed first in the JWK Set (by
// convention the current one).
func NewKeySet(keys ...ed25519.PublicKey) (KeySet, error) {
	if len(keys) == 0 {
		return KeySet{}, errors.New("authn: a key set needs at least one key")
	}
	if len(keys) > maxKeys {
		return KeySet{}, fmt.Errorf("authn: %d keys, at most %d", len(keys), maxKeys)
	}
	s := KeySet{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for _, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return KeySet{}, errors.New("authn: malformed Ed25519 public key")
		}
		id := KeyID(k)
		if _, dup := s.keys[id]; dup {
			continue
		}
		s.ids = append(s.ids, id)
		s.keys[id] = slices.Clone(k)
	}
	return s, nil
}

// IDs lists the key ids in order.
func (s KeySet) IDs() []string { return slices.Clone(s.ids) }

// PublicKey returns the key with id kid, or ErrUnknownKey.
func (s KeySet) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// jwk is one RFC 8037 OKP key of a JWK Set.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// MarshalJSON writes the set as an RFC 7517 JWK Set.
func (s KeySet) MarshalJSON() ([]byte, error) {
	set := jwkSet{Keys: make([]jwk, 0, len(s.ids))}
	for _, id := range s.ids {
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(s.keys[id]), Kid: id, Alg: "EdDSA", Use: "sig",
		})
	}
	return json.Marshal(set)
}

// ParseJWKS reads an RFC 7517 JWK Set. Keys this package cannot use for EdDSA
// signatures (another kty or crv, use "enc", another alg) are skipped, as RFC 7517
// asks; a key whose kid is not its thumbprint is refused, since kids are
// thumbprints here and a mismatch means a tampered or hand-edited set.
func ParseJWKS(data []byte) (KeySet, error) {
	var set jwkSet
	if err := json.Unmarshal(data, &set); err != nil {
		return KeySet{}, fmt.Errorf("authn: JWK Set: %w", err)
	}
	var keys []ed25519.PublicKey
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "EdDSA") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return KeySet{}, errors.New("authn: JWK Set: malformed Ed25519 key")
		}
		if k.Kid != "" && k.Kid != KeyID(x) {
			return KeySet{}, fmt.Errorf("authn: JWK Set: kid %q is not the key's RFC 7638 thumbprint", k.Kid)
		}
		keys = append(keys, x)
	}
	if len(keys) == 0 {
		return KeySet{}, errors.New("authn: JWK Set holds no Ed25519 signing key")
	}
	return NewKeySet(keys...)
}
