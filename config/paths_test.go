package config

import (
	"strings"
	"testing"
)

func TestPathsFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    Paths
		wantErr []string
	}{
		{
			name: "home only",
			env:  map[string]string{"HOME": "/home/u"},
			want: Paths{Home: "/home/u", ConfigDir: "/home/u/.config/ringlet", StateDir: "/home/u/.local/state/ringlet", DataDir: "/home/u/.local/share/ringlet"},
		},
		{
			name: "xdg set",
			env:  map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "/x/c", "XDG_STATE_HOME": "/x/s/", "XDG_DATA_HOME": "/x//d"},
			want: Paths{Home: "/home/u", ConfigDir: "/x/c/ringlet", StateDir: "/x/s/ringlet", DataDir: "/x/d/ringlet"},
		},
		{
			name: "relative xdg ignored",
			env:  map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "rel/c", "XDG_STATE_HOME": "./s", "XDG_DATA_HOME": "~/d"},
			want: Paths{Home: "/home/u", ConfigDir: "/home/u/.config/ringlet", StateDir: "/home/u/.local/state/ringlet", DataDir: "/home/u/.local/share/ringlet"},
		},
		{
			name: "no home but every xdg",
			env:  map[string]string{"XDG_CONFIG_HOME": "/c", "XDG_STATE_HOME": "/s", "XDG_DATA_HOME": "/d"},
			want: Paths{ConfigDir: "/c/ringlet", StateDir: "/s/ringlet", DataDir: "/d/ringlet"},
		},
		{name: "no home", env: map[string]string{}, wantErr: []string{"HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"}},
		{name: "relative home", env: map[string]string{"HOME": "home/u"}, wantErr: []string{"HOME"}},
		{name: "no home and one xdg missing", env: map[string]string{"XDG_CONFIG_HOME": "/c", "XDG_DATA_HOME": "/d"}, wantErr: []string{"XDG_STATE_HOME"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := PathsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("PathsFromEnv: got %+v, nil error; want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error: got %q, want it to contain %q", err, w)
					}
				}
				if got != (Paths{}) {
					t.Errorf("Paths with an error: got %+v, want zero", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("PathsFromEnv: got error %v, want nil", err)
			}
			if got != tt.want {
				t.Errorf("PathsFromEnv: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPathsFiles(t *testing.T) {
	t.Parallel()
	p := Paths{ConfigDir: "/c", StateDir: "/s", DataDir: "/d"}
	tests := []struct{ name, got, want string }{
		{"ConfigFile", p.ConfigFile(), "/c/config.toml"},
		{"TokenFile", p.TokenFile(), "/c/http_token"},
		{"LogFile", p.LogFile(), "/s/daemon.log"},
		{"StateFile", p.StateFile(), "/s/daemon.json"},
		{"LockFile", p.LockFile(), "/s/daemon.lock"},
		{"DefaultAuditPath", p.DefaultAuditPath(), "/s/audit.db"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestExpandHome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		home, path, want string
		wantErr          bool
	}{
		{home: "/home/u", path: "~", want: "/home/u"},
		{home: "/home/u", path: "~/", want: "/home/u"},
		{home: "/home/u", path: "~/a/b.db", want: "/home/u/a/b.db"},
		{home: "/home/u", path: "~/../x", want: "/home/x"},
		{home: "/home/u", path: "~bob/a", want: "~bob/a"},
		{home: "/home/u", path: "/abs/~/a", want: "/abs/~/a"},
		{home: "/home/u", path: "rel", want: "rel"},
		{home: "/home/u", path: "", want: ""},
		{home: "", path: "/abs", want: "/abs"},
		{home: "", path: "~", wantErr: true},
		{home: "", path: "~/a", wantErr: true},
		{home: "relative", path: "~/a", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.home+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			got, err := Paths{Home: tt.home}.ExpandHome(tt.path)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "HOME") {
					t.Errorf("ExpandHome: got (%q, %v), want an error naming HOME", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ExpandHome: got (%q, %v), want (%q, nil)", got, err, tt.want)
			}
		})
	}
}
