// Package app holds the comment service's use cases: writing, listing, reading and
// deleting comments under the project's permissions, and keeping the local copies of
// users, projects, memberships and cards that those permissions are read from.
package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/bugtracker/bugtracker/comment/domain/comment"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
)

// Application gathers the use cases.
type Application struct {
	CreateComment CreateCommentHandler
	ListComments  ListCommentsHandler
	GetComment    GetCommentHandler
	DeleteComment DeleteCommentHandler

	ApplyUser       ApplyUserHandler
	ApplyProject    ApplyProjectHandler
	ApplyMembership ApplyMembershipHandler
	ApplyCard       ApplyCardHandler
}

// roleFrom is what userID is to a project according to its copy and the user's
// membership copy: a deleted or unknown project, a kicked member and a user never
// added are all strangers.
func roleFrom(userID string, p ProjectCopy, projectFound bool, m MemberCopy, memberFound bool) comment.Role {
	switch {
	case !projectFound || p.Deleted:
		return comment.Stranger
	case p.OwnerID == userID:
		return comment.Owner
	case memberFound && !m.Removed:
		return comment.Member
	default:
		return comment.Stranger
	}
}

// roleOf reads what userID is to the project; lock is passed to the reads, so that
// inside Update the answer holds until commit.
func roleOf(ctx context.Context, tx Tx, userID, projectID string, lock Lock) (comment.Role, error) {
	p, err := tx.Project(ctx, projectID, lock)
	if errors.Is(err, ErrNoCopy) {
		return comment.Stranger, nil
	}
	if err != nil {
		return comment.Stranger, err
	}
	if p.Deleted || p.OwnerID == userID {
		return roleFrom(userID, p, true, MemberCopy{}, false), nil
	}
	m, err := tx.Member(ctx, projectID, userID, lock)
	if err != nil && !errors.Is(err, ErrNoCopy) {
		return comment.Stranger, err
	}
	return roleFrom(userID, p, true, m, err == nil), nil
}

// cardRole reads a live card and what userID is to its project in one read. An
// unknown card (its newCard has not arrived yet) or a deleted one is
// comment.ErrNotFound.
func cardRole(ctx context.Context, tx Tx, cardID, userID string, lock Lock) (CardCopy, ProjectCopy, comment.Role, error) {
	a, err := tx.CardAccess(ctx, cardID, userID, lock)
	if errors.Is(err, ErrNoCopy) || (err == nil && a.Card.Deleted) {
		return CardCopy{}, ProjectCopy{}, comment.Stranger, comment.ErrNotFound
	}
	if err != nil {
		return CardCopy{}, ProjectCopy{}, comment.Stranger, err
	}
	return a.Card, a.Project, roleFrom(userID, a.Project, a.ProjectFound, a.Member, a.MemberFound), nil
}

// CreateComment asks to add a comment to a card.
type CreateComment struct {
	CallerID string
	CardID   string
	Body     string
}

// CreateCommentHandler adds comments.
type CreateCommentHandler struct {
	store Store
	now   Clock
	newID IDGenerator
}

// NewCreateCommentHandler wires the use case.
func NewCreateCommentHandler(store Store, now Clock, newID IDGenerator) CreateCommentHandler {
	return CreateCommentHandler{store: store, now: now, newID: newID}
}

// Handle checks that the caller is the owner or a live member of the card's project,
// then stores the comment and its newComment event in one transaction. The card, the
// project and the membership are read with share locks, so a concurrent deleteCard,
// deleteProject or kick either sees this comment (and removes it) or makes this
// creation fail with ErrNotFound: no comment outlives its card (see
// TestCreateRacingCardDeletion). A card whose copy has not arrived yet is
// ErrNotFound, never forbidden, and succeeds once the copy is there.
func (h CreateCommentHandler) Handle(ctx context.Context, cmd CreateComment) (comment.Comment, error) {
	var created comment.Comment
	err := h.store.Update(ctx, func(ctx context.Context, tx Tx) error {
		card, project, role, err := cardRole(ctx, tx, cmd.CardID, cmd.CallerID, Share)
		if err != nil {
			return err
		}
		if err := role.CanSee(); err != nil {
			return err
		}
		c, err := comment.New(h.newID(), card.ID, card.ProjectID, cmd.CallerID, cmd.Body, h.now())
		if err != nil {
			return err
		}
		author, err := tx.User(ctx, cmd.CallerID)
		if err != nil && !errors.Is(err, ErrNoCopy) {
			return err
		}
		members, err := tx.MemberIDs(ctx, project.ID)
		if err != nil {
			return err
		}
		env, err := contracts.New(contracts.CommentCreated{
			CommentID: c.ID(), CardID: c.CardID(), ProjectID: c.ProjectID(), AuthorID: c.AuthorID(),
			Body: c.Body(), CreatedAt: c.CreatedAt(), AggregateVersion: 1,
			CardTitle: card.Title, ProjectTitle: project.Title, ActorName: author.Name,
			Audience: audience(project.OwnerID, members),
		}, c.ID(), c.CreatedAt())
		if err != nil {
			return err
		}
		if err := tx.AddComment(ctx, c); err != nil {
			return err
		}
		created = c
		return tx.Publish(ctx, env)
	})
	return created, err
}

// audience is the owner and the members, the owner not repeated.
func audience(ownerID string, members []string) contracts.Audience {
	ids := make([]string, 0, len(members))
	for _, m := range members {
		if m != ownerID {
			ids = append(ids, m)
		}
	}
	return contracts.Audience{OwnerID: ownerID, MemberIDs: ids}
}

// ListComments asks for a page of a card's comments.
type ListComments struct {
	CallerID string
	CardID   string
	// After is the position the page starts after; nil for the first page.
	After *Position
	Limit int
}

// CommentPage is one page; Next is the position to continue after, nil on the last page.
type CommentPage struct {
	Items []comment.Comment
	Next  *Position
}

// ListCommentsHandler lists a card's comments, oldest first.
type ListCommentsHandler struct{ store Store }

// NewListCommentsHandler wires the query.
func NewListCommentsHandler(store Store) ListCommentsHandler {
	return ListCommentsHandler{store: store}
}

// Handle returns the page after q.After. Pages are keyset ranges over (createdAt,
// id), so a comment inserted while a client walks the list never shifts the pages:
// every comment that existed when the walk started is returned exactly once.
func (h ListCommentsHandler) Handle(ctx context.Context, q ListComments) (CommentPage, error) {
	var page CommentPage
	err := h.store.View(ctx, func(ctx context.Context, tx Tx) error {
		card, _, role, err := cardRole(ctx, tx, q.CardID, q.CallerID, NoLock)
		if err != nil {
			return err
		}
		if err := role.CanSee(); err != nil {
			return err
		}
		items, err := tx.Comments(ctx, card.ID, q.After, q.Limit+1)
		if err != nil {
			return err
		}
		if len(items) > q.Limit {
			items = items[:q.Limit]
			last := items[len(items)-1]
			page.Next = &Position{CreatedAt: last.CreatedAt(), ID: last.ID()}
		}
		page.Items = items
		return nil
	})
	return page, err
}

// GetCommentHandler reads one comment.
type GetCommentHandler struct{ store Store }

// NewGetCommentHandler wires the query.
func NewGetCommentHandler(store Store) GetCommentHandler { return GetCommentHandler{store: store} }

// Handle returns the comment if the caller may see its project, else ErrNotFound.
func (h GetCommentHandler) Handle(ctx context.Context, callerID, id string) (comment.Comment, error) {
	var c comment.Comment
	err := h.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		if c, err = tx.Comment(ctx, id, NoLock); err != nil {
			return err
		}
		role, err := roleOf(ctx, tx, callerID, c.ProjectID(), NoLock)
		if err != nil {
			return err
		}
		return role.CanSee()
	})
	return c, err
}

// DeleteCommentHandler deletes comments.
type DeleteCommentHandler struct {
	store Store
	now   Clock
}

// NewDeleteCommentHandler wires the use case.
func NewDeleteCommentHandler(store Store, now Clock) DeleteCommentHandler {
	return DeleteCommentHandler{store: store, now: now}
}

// Handle deletes the comment when the caller is its author or the project's owner
// (another member: ErrForbidden; a stranger: ErrNotFound) and stores deleteComment
// in the same transaction. The comment row is locked and the deletion must remove
// it, so of concurrent deletions exactly one succeeds and publishes (see
// TestConcurrentDeletesPublishOnce): the project service's totalComment counts each
// deletion once.
func (h DeleteCommentHandler) Handle(ctx context.Context, callerID, id string) error {
	return h.store.Update(ctx, func(ctx context.Context, tx Tx) error {
		c, err := tx.Comment(ctx, id, Exclusive)
		if err != nil {
			return err
		}
		role, err := roleOf(ctx, tx, callerID, c.ProjectID(), Share)
		if err != nil {
			return err
		}
		if err := role.CanDelete(callerID, c); err != nil {
			return err
		}
		removed, err := tx.RemoveComment(ctx, id)
		if err != nil {
			return err
		}
		if !removed {
			return comment.ErrNotFound
		}
		now := h.now().UTC()
		env, err := contracts.New(contracts.CommentDeleted{
			CommentID: c.ID(), CardID: c.CardID(), ProjectID: c.ProjectID(), AuthorID: c.AuthorID(),
			DeletedBy: callerID, DeletedAt: now, AggregateVersion: 2,
		}, c.ID(), now)
		if err != nil {
			return err
		}
		return tx.Publish(ctx, env)
	})
}

// ApplyUserHandler applies newUser to the user copies.
type ApplyUserHandler struct{ store Store }

// NewApplyUserHandler wires the use case.
func NewApplyUserHandler(store Store) ApplyUserHandler { return ApplyUserHandler{store: store} }

// Handle stores u unless the event was applied before or the copy is as new.
func (h ApplyUserHandler) Handle(ctx context.Context, eventID string, u UserCopy) error {
	if u.ID == "" {
		return errors.New("apply user: empty id")
	}
	_, err := h.store.ApplyEvent(ctx, eventID, func(ctx context.Context, tx Tx) error {
		old, err := tx.User(ctx, u.ID)
		switch {
		case errors.Is(err, ErrNoCopy):
		case err != nil:
			return err
		case old.Version >= u.Version:
			return nil
		}
		return tx.SaveUser(ctx, u)
	})
	return err
}

// ApplyProjectHandler applies newProject, updateProject and deleteProject.
type ApplyProjectHandler struct{ store Store }

// NewApplyProjectHandler wires the use case.
func NewApplyProjectHandler(store Store) ApplyProjectHandler {
	return ApplyProjectHandler{store: store}
}

// Handle stores p when it is newer than the copy. A deletion is final: it always
// leaves a tombstone (with the highest version seen) and removes the project's
// comments, and nothing applies over a tombstone, so a late newProject or
// updateProject cannot resurrect the project. A deletion publishes nothing: the
// project service deleted the cards itself, and notif needs nothing about comments
// that went with them.
func (h ApplyProjectHandler) Handle(ctx context.Context, eventID string, p ProjectCopy) error {
	if p.ID == "" {
		return errors.New("apply project: empty id")
	}
	_, err := h.store.ApplyEvent(ctx, eventID, func(ctx context.Context, tx Tx) error {
		old, err := tx.Project(ctx, p.ID, Exclusive)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNoCopy) {
			return err
		}
		if found && old.Deleted {
			return nil
		}
		if !p.Deleted {
			if found && old.Version >= p.Version {
				return nil
			}
			return tx.SaveProject(ctx, p)
		}
		if found {
			p.Version = max(p.Version, old.Version)
			if p.Title == "" {
				p.Title = old.Title
			}
		}
		if err := tx.SaveProject(ctx, p); err != nil {
			return err
		}
		if _, err := tx.RemoveProjectComments(ctx, p.ID); err != nil {
			return fmt.Errorf("remove comments of project %s: %w", p.ID, err)
		}
		return nil
	})
	return err
}

// ApplyMembershipHandler applies memberAdded and memberRemoved.
type ApplyMembershipHandler struct{ store Store }

// NewApplyMembershipHandler wires the use case.
func NewApplyMembershipHandler(store Store) ApplyMembershipHandler {
	return ApplyMembershipHandler{store: store}
}

// Handle stores m when it is newer than the copy. A kick leaves a tombstone with its
// version, so a late memberAdded of an older version cannot restore access, while a
// later re-add (a higher version) does. The copy is written under an exclusive
// lock, which waits for comment creations holding a share lock on the membership:
// once the kick commits, the kicked user can create nothing more.
func (h ApplyMembershipHandler) Handle(ctx context.Context, eventID string, m MemberCopy) error {
	if m.ProjectID == "" || m.UserID == "" {
		return errors.New("apply membership: empty project or user id")
	}
	_, err := h.store.ApplyEvent(ctx, eventID, func(ctx context.Context, tx Tx) error {
		old, err := tx.Member(ctx, m.ProjectID, m.UserID, Exclusive)
		switch {
		case errors.Is(err, ErrNoCopy):
		case err != nil:
			return err
		case old.Version >= m.Version:
			return nil
		}
		return tx.SaveMember(ctx, m)
	})
	return err
}

// ApplyCardHandler applies newCard, updateCard, changeCardStatus and deleteCard.
type ApplyCardHandler struct{ store Store }

// NewApplyCardHandler wires the use case.
func NewApplyCardHandler(store Store) ApplyCardHandler { return ApplyCardHandler{store: store} }

// Handle stores c when it is newer than the copy. As for projects, a deletion is
// final: it leaves a tombstone and removes the card's comments, publishing nothing
// (the project service deleted the card and its count itself).
func (h ApplyCardHandler) Handle(ctx context.Context, eventID string, c CardCopy) error {
	if c.ID == "" || c.ProjectID == "" {
		return errors.New("apply card: empty card or project id")
	}
	_, err := h.store.ApplyEvent(ctx, eventID, func(ctx context.Context, tx Tx) error {
		old, err := tx.Card(ctx, c.ID, Exclusive)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNoCopy) {
			return err
		}
		if found && old.Deleted {
			return nil
		}
		if !c.Deleted {
			if found && old.Version >= c.Version {
				return nil
			}
			return tx.SaveCard(ctx, c)
		}
		if found {
			c.Version = max(c.Version, old.Version)
			if c.Title == "" {
				c.Title = old.Title
			}
		}
		if err := tx.SaveCard(ctx, c); err != nil {
			return err
		}
		if _, err := tx.RemoveCardComments(ctx, c.ID); err != nil {
			return fmt.Errorf("remove comments of card %s: %w", c.ID, err)
		}
		return nil
	})
	return err
}
