package envconfig

import (
	"testing"
	"time"
)

type inner struct {
	N int `env:"N" envDefault:"7"`
}

type config struct {
	Addr    string        `env:"ADDR" envDefault:":1234"`
	Wait    time.Duration `env:"WAIT" envDefault:"5s"`
	List    []string      `env:"LIST" envDefault:"a,b"`
	None    int           `env:"NONE"`
	Skipped func()        `env:"-"`
	Inner   inner         `envPrefix:"INNER_"`
}

func TestDefaultsFollowTheTags(t *testing.T) {
	t.Setenv("ADDR", "ignored:1") // the process' environment is not read
	c := Defaults[config]()
	if c.Addr != ":1234" || c.Wait != 5*time.Second || len(c.List) != 2 || c.List[1] != "b" || c.None != 0 || c.Inner.N != 7 {
		t.Fatalf("%+v", c)
	}
}

func TestBadTagPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a default that does not parse must panic")
		}
	}()
	Defaults[struct {
		N int `env:"N" envDefault:"seven"`
	}]()
}
