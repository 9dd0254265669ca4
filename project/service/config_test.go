package service_test

import (
	"strings"
	"testing"

	"github.com/bugtracker/bugtracker/project/service"
)

func TestConfigNamesTheBadVariable(t *testing.T) {
	good := map[string]string{
		"JWT_SECRET":    strings.Repeat("j", 32),
		"CURSOR_SECRET": strings.Repeat("c", 32),
	}
	for k, v := range good {
		t.Setenv(k, v)
	}
	cfg, err := service.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":8082" || cfg.DatabaseURL != "sqlite://./data/project.db" || cfg.MaxMembers != 500 {
		t.Fatalf("defaults %+v", cfg)
	}
	bad := map[string]string{
		"CURSOR_SECRET":        "short",
		"PROJECT_DATABASE_URL": "oracle://x",
		"PROJECT_MAX_MEMBERS":  "0",
	}
	for k, v := range bad {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, v)
			if _, err := service.LoadConfig(); err == nil || !strings.Contains(err.Error(), k) {
				t.Fatalf("%s=%s: %v", k, v, err)
			}
		})
	}
}
