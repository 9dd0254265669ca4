package app_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bugtracker/bugtracker/project/adapters/memrepo"
	"github.com/bugtracker/bugtracker/project/app"
)

// Example builds the project use cases on the memory store, as another Go program
// would to reuse the domain without a database or HTTP: Ann creates a project, adds
// Bob, Bob files a card and Ann moves it to done. The events the service would
// publish are in the store.
func Example() {
	store := memrepo.New()
	store.PutUser(app.UserCopy{ID: "ann", Name: "Ann", Email: "ann@example.com", Version: 1})
	store.PutUser(app.UserCopy{ID: "bob", Name: "Bob", Email: "bob@example.com", Version: 1})
	n := 0
	deps := app.Deps{
		Store:      store,
		Clock:      func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) },
		NewID:      func() string { n++; return fmt.Sprintf("id-%d", n) },
		MaxMembers: 500,
	}
	policy := app.NewPolicy(store)
	ctx := context.Background()

	p, _ := app.NewCreateProjectHandler(deps).Handle(ctx, app.CreateProject{CallerID: "ann", Title: "Website"})
	_, _ = app.NewAddMemberHandler(deps, policy).Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: "bob"})
	c, _ := app.NewCreateCardHandler(deps, policy).Handle(ctx, app.CreateCard{CallerID: "bob", ProjectID: p.ID(), Title: "Login fails"})
	done := "done"
	c, _ = app.NewUpdateCardHandler(deps, policy).Handle(ctx, app.UpdateCard{CallerID: "ann", CardID: c.ID(), Status: &done})

	// A stranger sees nothing of the project.
	_, err := app.NewGetCardHandler(deps, policy).Handle(ctx, "eve", c.ID())

	fmt.Println(p.Title(), "owned by", p.OwnerID())
	fmt.Println(c.Title(), "is", c.Status(), "at version", c.Version())
	fmt.Println("eve:", err)
	for _, e := range store.Events() {
		fmt.Println(e.Type, e.AggregateID)
	}
	// Output:
	// Website owned by ann
	// Login fails is done at version 2
	// eve: card not found
	// newProject id-1
	// memberAdded id-1/bob
	// newCard id-2
	// changeCardStatus id-2
}
