package blockbuilder

import (
	"fmt"
	"sync"
	"testing"

	"github.com/thanos-io/objstore"
)

// TestTenantsReadWhileOpening: the read paths (Tenants, Tenant) run while
// writes open new tenants. Under the race detector this fails if a
// tenant's entry is published to readers without synchronisation (a
// reader on a weakly ordered CPU could see a partly opened tenant).
func TestTenantsReadWhileOpening(t *testing.T) {
	b := newTestBlockBuilder(t, objstore.NewInMemBucket(), nil, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, v := range b.Tenants() {
				_ = v.DB.Head().NumSeries()
			}
			if v, ok := b.Tenant("t-3"); ok {
				_ = v.DB.Head().NumSeries()
			}
		}
	}()
	for i := range 8 {
		if _, err := b.tenant(fmt.Sprintf("t-%d", i), true); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := len(b.Tenants()); n != 8 {
		t.Fatalf("%d tenants open, want 8", n)
	}
}
