package election

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestElect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ha.json")
	c := &clock{t: time.Unix(1_000_000, 0)}
	s, err := Open(path, 10, c.now)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 30 * time.Second
	elect := func(s *Store, replica, known string, want string) Decision {
		t.Helper()
		d, err := s.Elect("t", "prod", replica, known, timeout)
		if err != nil {
			t.Fatal(err)
		}
		if d.Replica != want {
			t.Fatalf("%s asks at %s: %s elected, want %s", replica, c.t.Format(time.TimeOnly), d.Replica, want)
		}
		return d
	}
	if d := elect(s, "a", "", "a"); !d.Elected || d.Failover {
		t.Fatalf("first ask: %+v, want a elected, no failover", d)
	}
	c.t = c.t.Add(20 * time.Second)
	elect(s, "b", "", "a")
	elect(s, "a", "", "a") // a seen at +20s
	c.t = c.t.Add(25 * time.Second)
	if d := elect(s, "b", "", "a"); d.Elected {
		t.Fatal("b elected 25s after a was last seen, inside the 30s timeout")
	}
	c.t = c.t.Add(10 * time.Second)
	if d := elect(s, "b", "", "b"); !d.Failover {
		t.Fatalf("35s after a's last write: %+v, want b elected by failover", d)
	}
	// Another cluster, another tenant: elections of their own.
	if d, _ := s.Elect("t", "dev", "a", "", timeout); d.Replica != "a" {
		t.Fatalf("cluster dev: %+v", d)
	}
	if d, _ := s.Elect("u", "prod", "a", "", timeout); d.Replica != "a" {
		t.Fatalf("tenant u: %+v", d)
	}

	// A restart keeps the elections, and gives the elected a whole
	// timeout from the start, though it was last seen long before.
	c.t = c.t.Add(time.Hour)
	s2, err := Open(path, 10, c.now)
	if err != nil {
		t.Fatal(err)
	}
	elect(s2, "a", "", "b")
	c.t = c.t.Add(timeout + time.Second)
	elect(s2, "a", "", "a")

	// A store without the cluster starts from the router's belief.
	s3, err := Open(filepath.Join(t.TempDir(), "ha.json"), 2, c.now)
	if err != nil {
		t.Fatal(err)
	}
	if d := elect(s3, "b", "a", "a"); d.Elected {
		t.Fatalf("adopted election reported as new: %+v", d)
	}
	elect(s3, "b", "", "a")
	// Bounded: a third cluster is refused until one is forgotten.
	if _, err := s3.Elect("t", "other", "a", "", timeout); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.Elect("t", "third", "a", "", timeout); !errors.Is(err, ErrFull) {
		t.Fatalf("third cluster over a bound of 2: %v, want ErrFull", err)
	}
	c.t = c.t.Add(forgetAfter + time.Minute)
	if _, err := s3.Elect("t", "third", "a", "", timeout); err != nil {
		t.Fatalf("after the others were idle for a day: %v", err)
	}
}

func TestOpenRefusesBrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ha.json")
	if err := writeFile(path, "{"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, 10, nil); err == nil {
		t.Fatal("a broken elections file opened")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
