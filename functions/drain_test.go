package functions

import "testing"

// TestDrainer: shutdown waits for the writes begun before it, and only
// for those.
func TestDrainer(t *testing.T) {
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	var d drainer
	a, b := d.enter(), d.enter()
	answered := d.begin()
	if !d.stopping() {
		t.Fatal("not stopping after begin")
	}
	late := d.enter()
	if late {
		t.Fatal("a write begun after shutdown was counted")
	}
	d.leave(a)
	if closed(answered) {
		t.Fatal("answered with a write begun before shutdown still in flight")
	}
	d.leave(late)
	if closed(answered) {
		t.Fatal("answered on a write begun after shutdown")
	}
	d.leave(b)
	if !closed(answered) {
		t.Fatal("not answered once every write begun before shutdown was")
	}
	if d.begin() != answered {
		t.Fatal("a second begin gave another channel")
	}

	var idle drainer
	if !closed(idle.begin()) {
		t.Fatal("with no write in flight, shutdown waited")
	}
}
