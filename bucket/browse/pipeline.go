// A bounded, order-keeping parallel map: how the tools read many small
// objects fast without holding more than a window of them.

package browse

import "context"

// ordered calls work on every item produce emits, up to conc at a time,
// and passes the results to consume in the order the items were emitted.
// At most conc items are between produce and consume at any time. An
// error from consume cancels the context given to produce and work, and
// is returned once in-flight work has drained.
func ordered[T, R any](ctx context.Context, conc int,
	produce func(ctx context.Context, emit func(T) error) error,
	work func(context.Context, T) R,
	consume func(R) error,
) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// futures carries one channel per item, in emission order; its
	// capacity is the window.
	futures := make(chan chan R, conc)
	prodErr := make(chan error, 1)
	go func() {
		defer close(futures)
		prodErr <- produce(ctx, func(item T) error {
			f := make(chan R, 1)
			select {
			case futures <- f:
			case <-ctx.Done():
				return ctx.Err()
			}
			go func() { f <- work(ctx, item) }()
			return nil
		})
	}()
	var err error
	for f := range futures {
		r := <-f
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err != nil {
			continue // drain, so that produce and the workers end
		}
		if cerr := consume(r); cerr != nil {
			err = cerr
			cancel()
		}
	}
	if perr := <-prodErr; perr != nil && err == nil {
		return perr
	}
	return err
}
