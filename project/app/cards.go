package app

import (
	"context"

	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

// CreateCard asks for a new card in a project.
type CreateCard struct {
	CallerID    string
	ProjectID   string
	Title       string
	Description string
	Status      string
}

// CreateCardHandler creates cards; owner and members.
type CreateCardHandler struct {
	d      Deps
	policy Policy
}

// NewCreateCardHandler wires the use case.
func NewCreateCardHandler(d Deps, p Policy) CreateCardHandler {
	return CreateCardHandler{d: d, policy: p}
}

// Handle validates, stores the card and publishes newCard with the audience.
func (h CreateCardHandler) Handle(ctx context.Context, cmd CreateCard) (project.Card, error) {
	var c project.Card
	err := h.d.Store.Write(ctx, func(ctx context.Context, tx Tx) error {
		p, err := h.policy.AuthorizeTx(ctx, tx, cmd.ProjectID, cmd.CallerID, project.ActWorkOnCards, project.ErrProjectNotFound)
		if err != nil {
			return err
		}
		now := h.d.now()
		c, err = project.NewCard(h.d.NewID(), p.ID(), cmd.Title, cmd.Description, cmd.Status, cmd.CallerID, now)
		if err != nil {
			return err
		}
		if err := tx.InsertCard(ctx, c); err != nil {
			return err
		}
		aud, name, err := audienceAndActor(ctx, tx, p, cmd.CallerID)
		if err != nil {
			return err
		}
		return publish(ctx, tx, now, aggregateEvent{contracts.CardCreated{
			CardID: c.ID(), ProjectID: p.ID(), Title: c.Title(), Description: c.Description(), Status: c.Status().String(),
			CreatorID: c.CreatorID(), CreatedAt: c.CreatedAt(), AggregateVersion: c.Version(),
			ProjectTitle: p.Title(), ActorName: name, Audience: aud,
		}, c.ID()})
	})
	return c, err
}

// audienceAndActor reads the audience and the actor's name, what notif needs to address and
// word a notification.
func audienceAndActor(ctx context.Context, tx Tx, p project.Project, callerID string) (contracts.Audience, string, error) {
	aud, err := audience(ctx, tx, p)
	if err != nil {
		return aud, "", err
	}
	name, err := actorName(ctx, tx, callerID)
	return aud, name, err
}

// ListCards asks for a page of a project's cards.
type ListCards struct {
	CallerID string
	Filter   CardFilter
	Limit    int
}

// CardPage is a page of cards and where the next one starts (nil on the last page).
type CardPage struct {
	Cards []project.Card
	Next  *CardPosition
}

// ListCardsHandler lists cards to the owner and members.
type ListCardsHandler struct {
	d      Deps
	policy Policy
}

// NewListCardsHandler wires the query.
func NewListCardsHandler(d Deps, p Policy) ListCardsHandler { return ListCardsHandler{d: d, policy: p} }

// Handle returns the page. It reads one card more than asked, so the last page is
// known to be last and never followed by an empty one.
func (h ListCardsHandler) Handle(ctx context.Context, q ListCards) (CardPage, error) {
	if _, err := h.policy.Authorize(ctx, q.Filter.ProjectID, q.CallerID, project.ActView, project.ErrProjectNotFound); err != nil {
		return CardPage{}, err
	}
	cards, err := h.d.Store.ListCards(ctx, q.Filter, q.Limit+1)
	if err != nil {
		return CardPage{}, err
	}
	page := CardPage{Cards: cards}
	if len(cards) > q.Limit {
		page.Cards = cards[:q.Limit]
		last := page.Cards[q.Limit-1]
		page.Next = &CardPosition{CreatedAt: last.CreatedAt(), ID: last.ID()}
	}
	return page, nil
}

// GetCardHandler returns one card to the project's owner and members.
type GetCardHandler struct {
	d      Deps
	policy Policy
}

// NewGetCardHandler wires the query.
func NewGetCardHandler(d Deps, p Policy) GetCardHandler { return GetCardHandler{d: d, policy: p} }

// Handle returns the card, or ErrCardNotFound to anyone else.
func (h GetCardHandler) Handle(ctx context.Context, callerID, cardID string) (project.Card, error) {
	c, err := h.d.Store.Card(ctx, cardID)
	if err != nil {
		return project.Card{}, err
	}
	if _, err := h.policy.Authorize(ctx, c.ProjectID(), callerID, project.ActView, project.ErrCardNotFound); err != nil {
		return project.Card{}, err
	}
	return c, nil
}

// UpdateCard asks to change a card (nil fields: unchanged).
type UpdateCard struct {
	CallerID    string
	CardID      string
	Title       *string
	Description *string
	Status      *string
}

// UpdateCardHandler edits cards; owner and members.
type UpdateCardHandler struct {
	d      Deps
	policy Policy
}

// NewUpdateCardHandler wires the use case.
func NewUpdateCardHandler(d Deps, p Policy) UpdateCardHandler {
	return UpdateCardHandler{d: d, policy: p}
}

// Handle applies the change. An edit of title or description publishes updateCard, a
// status change changeCardStatus with the old and new status; a PATCH doing both
// publishes both with the same aggregateVersion.
func (h UpdateCardHandler) Handle(ctx context.Context, cmd UpdateCard) (project.Card, error) {
	found, err := h.d.Store.Card(ctx, cmd.CardID)
	if err != nil {
		return project.Card{}, err
	}
	var out project.Card
	err = h.d.Store.Write(ctx, func(ctx context.Context, tx Tx) error {
		c, p, err := lockCard(ctx, tx, h.policy, cmd.CallerID, found)
		if err != nil {
			return err
		}
		now := h.d.now()
		ch, err := c.Update(cmd.Title, cmd.Description, cmd.Status, now)
		if err != nil {
			return err
		}
		out = c
		if !ch.Any() {
			return nil
		}
		if err := tx.SaveCard(ctx, c); err != nil {
			return err
		}
		var events []aggregateEvent
		if ch.Edited {
			events = append(events, aggregateEvent{contracts.CardUpdated{
				CardID: c.ID(), ProjectID: c.ProjectID(), Title: c.Title(), Description: c.Description(),
				Status: c.Status().String(), UpdatedBy: cmd.CallerID, UpdatedAt: now, AggregateVersion: c.Version(),
			}, c.ID()})
		}
		if ch.StatusChanged {
			aud, name, err := audienceAndActor(ctx, tx, p, cmd.CallerID)
			if err != nil {
				return err
			}
			events = append(events, aggregateEvent{contracts.CardStatusChanged{
				CardID: c.ID(), ProjectID: c.ProjectID(), Title: c.Title(), Description: c.Description(),
				From: ch.From.String(), To: c.Status().String(), ChangedBy: cmd.CallerID, ChangedAt: now,
				AggregateVersion: c.Version(), ProjectTitle: p.Title(), ActorName: name, Audience: aud,
			}, c.ID()})
		}
		return publish(ctx, tx, now, events...)
	})
	return out, err
}

// lockCard authorizes the caller on the locked row of the card's project (found
// before the transaction) and then locks the card, which must still be in that
// project: project before card, the order every writer follows.
func lockCard(ctx context.Context, tx Tx, policy Policy, callerID string, found project.Card) (project.Card, project.Project, error) {
	p, err := policy.AuthorizeTx(ctx, tx, found.ProjectID(), callerID, project.ActWorkOnCards, project.ErrCardNotFound)
	if err != nil {
		return project.Card{}, project.Project{}, err
	}
	c, err := tx.LockCard(ctx, p.ID(), found.ID())
	return c, p, err
}

// DeleteCardHandler deletes cards; owner and members.
type DeleteCardHandler struct {
	d      Deps
	policy Policy
}

// NewDeleteCardHandler wires the use case.
func NewDeleteCardHandler(d Deps, p Policy) DeleteCardHandler {
	return DeleteCardHandler{d: d, policy: p}
}

// Handle deletes the card and publishes deleteCard (the comment service drops its
// comments).
func (h DeleteCardHandler) Handle(ctx context.Context, callerID, cardID string) error {
	found, err := h.d.Store.Card(ctx, cardID)
	if err != nil {
		return err
	}
	return h.d.Store.Write(ctx, func(ctx context.Context, tx Tx) error {
		c, _, err := lockCard(ctx, tx, h.policy, callerID, found)
		if err != nil {
			return err
		}
		if err := tx.DeleteCard(ctx, c.ID()); err != nil {
			return err
		}
		now := h.d.now()
		return publish(ctx, tx, now, aggregateEvent{contracts.CardDeleted{
			CardID: c.ID(), ProjectID: c.ProjectID(), DeletedBy: callerID, DeletedAt: now, AggregateVersion: c.Delete(),
		}, c.ID()})
	})
}
