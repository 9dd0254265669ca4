// Package user holds the auth service's User aggregate and the rules on its fields.
// It knows nothing of HTTP, SQL or JSON.
package user

import (
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Field limits from API.md.
const (
	NameMaxLen     = 100
	EmailMaxLen    = 254
	PasswordMinLen = 8
	PasswordMaxLen = 128
)

// Sentinel errors callers map to responses with errors.Is.
var (
	// ErrNotFound means no user matches.
	ErrNotFound = errors.New("user not found")
	// ErrEmailTaken means another account already uses the email (case-insensitively).
	ErrEmailTaken = errors.New("email already registered")
	// ErrInvalidCredentials is the one answer to a wrong email or a wrong password.
	ErrInvalidCredentials = errors.New("invalid email or password")
)

// FieldViolation names a field and the rule it breaks.
type FieldViolation struct {
	Field   string
	Message string
}

// ValidationError lists every rule the input breaks, so a client can fix all at once.
type ValidationError struct {
	Violations []FieldViolation
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		msgs[i] = v.Field + " " + v.Message
	}
	return "invalid user: " + strings.Join(msgs, "; ")
}

// violations collects FieldViolations and becomes an error only when it has any.
type violations []FieldViolation

func (v *violations) add(field, msg string) { *v = append(*v, FieldViolation{field, msg}) }

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Violations: v}
}

// User is a registered account. Fields are unexported so every User passed around has
// gone through NewUser or UnmarshalUserFromDB.
type User struct {
	id           string
	name         string
	email        string
	passwordHash string
	createdAt    time.Time
}

// NewUser validates and builds a new account. passwordHash is the already-hashed
// password; check the plain one with ValidatePassword first.
func NewUser(id, name, email, passwordHash string, createdAt time.Time) (User, error) {
	var v violations
	checkName(&v, name)
	checkEmail(&v, email)
	if id == "" {
		v.add("id", "must not be empty")
	}
	if passwordHash == "" {
		v.add("password", "must not be empty")
	}
	if err := v.err(); err != nil {
		return User{}, err
	}
	return User{id: id, name: name, email: strings.TrimSpace(email), passwordHash: passwordHash, createdAt: createdAt.UTC().Truncate(time.Microsecond)}, nil
}

// ValidateRegistration checks name, email and password together, before the costly
// password hash is computed.
func ValidateRegistration(name, email, password string) error {
	var v violations
	checkName(&v, name)
	checkEmail(&v, email)
	checkPassword(&v, "password", password)
	return v.err()
}

// ValidatePassword checks a new password against the length policy; field names the
// input field in the error.
func ValidatePassword(field, password string) error {
	var v violations
	checkPassword(&v, field, password)
	return v.err()
}

// ValidateEmail checks an email address alone (password reset requests).
func ValidateEmail(email string) error {
	var v violations
	checkEmail(&v, email)
	return v.err()
}

// UnmarshalUserFromDB rebuilds a stored user without validation; adapters only.
func UnmarshalUserFromDB(id, name, email, passwordHash string, createdAt time.Time) User {
	return User{id: id, name: name, email: email, passwordHash: passwordHash, createdAt: createdAt.UTC()}
}

// NormalizeEmail is the form under which emails are unique: trimmed and lower-cased.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func checkName(v *violations, name string) {
	n := utf8.RuneCountInString(strings.TrimSpace(name))
	if n == 0 || utf8.RuneCountInString(name) > NameMaxLen {
		v.add("name", "must be 1 to 100 characters")
	}
}

func checkEmail(v *violations, email string) {
	email = strings.TrimSpace(email)
	if email == "" || len(email) > EmailMaxLen {
		v.add("email", "must be a valid email address")
		return
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		v.add("email", "must be a valid email address")
	}
}

func checkPassword(v *violations, field, password string) {
	n := utf8.RuneCountInString(password)
	if n < PasswordMinLen || n > PasswordMaxLen {
		v.add(field, "must be 8 to 128 characters")
	}
}

// ID is the user's opaque id.
func (u User) ID() string { return u.id }

// Name is the display name.
func (u User) Name() string { return u.name }

// Email is the address as the user typed it.
func (u User) Email() string { return u.email }

// NormalizedEmail is the email in the form that must be unique.
func (u User) NormalizedEmail() string { return NormalizeEmail(u.email) }

// PasswordHash is the encoded password hash.
func (u User) PasswordHash() string { return u.passwordHash }

// CreatedAt is when the account was registered (UTC).
func (u User) CreatedAt() time.Time { return u.createdAt }
