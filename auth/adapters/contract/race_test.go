package contract

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bugtracker/bugtracker/auth/adapters/throttle"
	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/platform/authn"
)

// plainHasher stands in for argon2 so that a trial costs database round trips only.
type plainHasher struct{}

func (plainHasher) Hash(p string) (string, error) { return "plain:" + p, nil }

func (plainHasher) Verify(p, h string) (bool, error) { return h == "plain:"+p, nil }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// countingTokens mints access tokens whose string is their id, so a test can ask the
// revocation list about every token it was given.
type countingTokens struct{ n atomic.Int64 }

// TTL is the access token lifetime.
func (c *countingTokens) TTL() time.Duration { return 15 * time.Minute }

// Issue mints the next numbered token.
func (c *countingTokens) Issue(_, _ string, now time.Time) (string, app.AccessToken, error) {
	id := fmt.Sprintf("at-%d", c.n.Add(1))
	return id, app.AccessToken{ID: id, ExpiresAt: now.Add(c.TTL())}, nil
}

var raceLimits = app.Limits{
	Login: app.Limit{Max: 1000, Window: time.Minute}, Register: app.Limit{Max: 1000, Window: time.Minute},
	Reset: app.Limit{Max: 1000, Window: time.Minute}, ChangePassword: app.Limit{Max: 1000, Window: time.Minute},
}

// TestRevocationBeatsRotation is defect 1 of issue 7: an attacker rotates a stolen
// refresh token in a loop while the family is revoked by reuse detection, by a
// password change in another session, or by a password reset. Whatever the
// interleaving, once the revocation returned no token of the attacker's family may
// refresh and every access token issued to it must be on the revocation list.
// 200 trials per way and adapter; a survivor in any of them fails the test.
func TestRevocationBeatsRotation(t *testing.T) {
	const trials = 200
	ways := []string{"reuse", "password change", "reset"}
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) {
			// The backends run side by side: SQLite's trials are CPU-bound in this
			// process while PostgreSQL's mostly wait on the server.
			t.Parallel()
			b := newBackend(t)
			ctx := context.Background()
			revocations := authn.NewMemoryRevocations()
			tokens := &countingTokens{}
			limits := throttle.NewMemory()
			hasher := plainHasher{}
			login, err := app.NewLoginHandler(b.users, b.sessions, hasher, limits, raceLimits, tokens, time.Now, newID, app.RefreshTTL(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			refresh := app.NewRefreshHandler(b.users, b.sessions, revocations, tokens, time.Now, newID, app.RefreshTTL(time.Hour))
			change := app.NewChangePasswordHandler(b.users, b.sessions, hasher, revocations, limits, raceLimits, time.Now)
			reset := app.NewResetPasswordHandler(b.resets, b.sessions, hasher, revocations, limits, raceLimits, time.Now)

			for _, way := range ways {
				t.Run(way, func(t *testing.T) {
					survivors, rotations := 0, 0
					var u user.User
					password := "password 0"
					for trial := range trials {
						// Reuse revokes one family, so one user serves every trial; the
						// other ways revoke all of a user's sessions, so each trial gets
						// a fresh user (or each would revoke every earlier trial's tokens).
						if trial == 0 || way != "reuse" {
							u, err = user.NewUser(newID(), "Racer", "racer-"+uuid.NewString()+"@example.com", "plain:"+password, time.Now())
							if err != nil {
								t.Fatal(err)
							}
							if err := b.users.Add(ctx, u); err != nil {
								t.Fatal(err)
							}
						}
						stolen, err := login.Handle(ctx, app.Login{Email: u.Email(), Password: password})
						if err != nil {
							t.Fatal(err)
						}
						var owner app.Tokens
						if way == "password change" {
							if owner, err = login.Handle(ctx, app.Login{Email: u.Email(), Password: password}); err != nil {
								t.Fatal(err)
							}
						}

						// The attacker rotates until refused or told to stop.
						var stop atomic.Bool
						var done sync.WaitGroup
						var mu sync.Mutex
						latest := stolen.RefreshToken
						accessTokens := []string{stolen.AccessToken}
						rotated := make(chan struct{}, 1)
						done.Go(func() {
							tok := latest
							// Rotations are capped so that a slow revoker (SQLite's
							// single writer) is not starved; the race is in the first few.
							for n := 0; !stop.Load(); n++ {
								if n >= 4 {
									time.Sleep(100 * time.Microsecond)
									continue
								}
								next, err := refresh.Handle(ctx, app.Refresh{RefreshToken: tok})
								if errors.Is(err, user.ErrInvalidRefreshToken) {
									return
								}
								if err != nil {
									t.Error(err)
									return
								}
								tok = next.RefreshToken
								mu.Lock()
								latest, accessTokens = tok, append(accessTokens, next.AccessToken)
								mu.Unlock()
								select {
								case rotated <- struct{}{}:
								default:
								}
							}
						})
						<-rotated // the stolen token is used now, so presenting it is reuse
						time.Sleep(time.Duration(rand.IntN(800)) * time.Microsecond)

						switch way {
						case "reuse":
							if _, err := refresh.Handle(ctx, app.Refresh{RefreshToken: stolen.RefreshToken}); !errors.Is(err, user.ErrInvalidRefreshToken) {
								t.Fatalf("reuse of the stolen token: %v", err)
							}
						case "password change":
							ownerSession, err := b.sessions.ByTokenHash(ctx, app.HashToken(owner.RefreshToken))
							if err != nil {
								t.Fatal(err)
							}
							if err := change.Handle(ctx, app.ChangePassword{
								UserID: u.ID(), SessionID: ownerSession.FamilyID, CurrentPassword: password, NewPassword: fmt.Sprintf("password %d", trial+1),
							}); err != nil {
								t.Fatal(err)
							}
							password = fmt.Sprintf("password %d", trial+1)
						case "reset":
							token := "reset-" + newID()
							if err := b.resets.CreateReset(ctx, app.ResetToken{
								ID: newID(), UserID: u.ID(), TokenHash: app.HashToken(token), CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
							}); err != nil {
								t.Fatal(err)
							}
							if err := reset.Handle(ctx, app.ResetPassword{Token: token, NewPassword: fmt.Sprintf("password %d", trial+1)}); err != nil {
								t.Fatal(err)
							}
							password = fmt.Sprintf("password %d", trial+1)
						}
						stop.Store(true)
						done.Wait()

						mu.Lock()
						survived := false
						if _, err := refresh.Handle(ctx, app.Refresh{RefreshToken: latest}); err == nil {
							survived = true
						}
						for _, at := range accessTokens {
							if revoked, _ := revocations.IsRevoked(ctx, at); !revoked {
								survived = true
							}
						}
						rotations += len(accessTokens) - 1
						mu.Unlock()
						if survived {
							survivors++
						}
					}
					t.Logf("%s on %s: %d survivors in %d trials (%d rotations)", way, name, survivors, trials, rotations)
					if survivors != 0 {
						t.Fatalf("%d of %d trials left the attacker a live token", survivors, trials)
					}
				})
			}
		})
	}
}
