// Package app holds the project service's use cases, one handler per command or
// query, and the ports they need (ports.go). Every authorization decision goes
// through Policy, so a route cannot forget one and no two routes decide differently.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

// Deps are what every handler needs.
type Deps struct {
	Store      Store
	Clock      Clock
	NewID      IDGenerator
	MaxMembers MaxMembers
}

// now is the clock truncated to microseconds, the precision every store keeps, so
// what a handler returns equals what a later read returns.
func (d Deps) now() time.Time { return d.Clock().UTC().Truncate(time.Microsecond) }

// Policy is the one place deciding who may do what with a project (owner, member,
// stranger; project.Access.Decide holds the rule). Handlers ask it before acting.
type Policy struct{ store Store }

// NewPolicy returns the policy over the store.
func NewPolicy(s Store) Policy { return Policy{store: s} }

// Authorize returns the project when userID may perform act on it. A stranger gets
// notFound (never learning that the project exists), a member asking for an
// owner-only action project.ErrForbidden.
func (p Policy) Authorize(ctx context.Context, projectID, userID string, act project.Action, notFound error) (project.Project, error) {
	pr, access, err := p.store.Access(ctx, projectID, userID)
	if err != nil {
		if errors.Is(err, project.ErrProjectNotFound) {
			return project.Project{}, notFound
		}
		return project.Project{}, err
	}
	if err := access.Decide(act, notFound); err != nil {
		return project.Project{}, err
	}
	return pr, nil
}

// AuthorizeTx is Authorize inside a write transaction, on the locked project row, so
// that a kick or deletion committed just before cannot be missed.
func (Policy) AuthorizeTx(ctx context.Context, tx Tx, projectID, userID string, act project.Action, notFound error) (project.Project, error) {
	pr, access, err := tx.LockProject(ctx, projectID, userID, act == project.ActManage)
	if err != nil {
		if errors.Is(err, project.ErrProjectNotFound) {
			return project.Project{}, notFound
		}
		return project.Project{}, err
	}
	if err := access.Decide(act, notFound); err != nil {
		return project.Project{}, err
	}
	return pr, nil
}

// Application gathers the use cases.
type Application struct {
	CreateProject CreateProjectHandler
	ListProjects  ListProjectsHandler
	GetProject    GetProjectHandler
	UpdateProject UpdateProjectHandler
	DeleteProject DeleteProjectHandler
	AddMember     AddMemberHandler
	ListMembers   ListMembersHandler
	RemoveMember  RemoveMemberHandler
	CreateCard    CreateCardHandler
	ListCards     ListCardsHandler
	GetCard       GetCardHandler
	UpdateCard    UpdateCardHandler
	DeleteCard    DeleteCardHandler
	RecordUser    RecordUserHandler
	RecordComment RecordCommentHandler
}

// envelope wraps an event, failing only when it cannot be encoded.
func envelope(e eventbus.Event, aggregateID string, at time.Time) (eventbus.Envelope, error) {
	env, err := contracts.New(e, aggregateID, at)
	if err != nil {
		return eventbus.Envelope{}, fmt.Errorf("event %s: %w", e.EventName(), err)
	}
	return env, nil
}

// publish wraps each event and adds them to the transaction's outbox.
func publish(ctx context.Context, tx Tx, at time.Time, events ...aggregateEvent) error {
	envs := make([]eventbus.Envelope, len(events))
	for i, e := range events {
		env, err := envelope(e.event, e.aggregateID, at)
		if err != nil {
			return err
		}
		envs[i] = env
	}
	return tx.Publish(ctx, envs...)
}

type aggregateEvent struct {
	event       eventbus.Event
	aggregateID string
}

// audience reads the project's owner and members in the caller's transaction.
func audience(ctx context.Context, tx Tx, p project.Project) (contracts.Audience, error) {
	ids, err := tx.Audience(ctx, p.ID())
	if err != nil {
		return contracts.Audience{}, err
	}
	if ids == nil {
		ids = []string{}
	}
	return contracts.Audience{OwnerID: p.OwnerID(), MemberIDs: ids}, nil
}

// actorName is the caller's name from the local user copy, empty when newUser has
// not arrived yet (notif words the message without it).
func actorName(ctx context.Context, tx Tx, userID string) (string, error) {
	u, err := tx.User(ctx, userID)
	if errors.Is(err, project.ErrUnknownUser) {
		return "", nil
	}
	return u.Name, err
}
