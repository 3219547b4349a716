package ifhook

import (
	"fmt"
	"strings"

	"github.com/ifhook/ifhook/ifhook/rtnl"
)

// batches groups steps: consecutive linkSteps on one link form one batch,
// any other step is a batch of its own.
func batches(steps []Step) [][]Step {
	var out [][]Step
	for i := 0; i < len(steps); {
		j := i + 1
		if a, ok := steps[i].(linkStep); ok {
			for j < len(steps) {
				b, ok := steps[j].(linkStep)
				if !ok || b.linkIndex() != a.linkIndex() {
					break
				}
				j++
			}
		}
		out = append(out, steps[i:j])
		i = j
	}
	return out
}

// doBatch applies one batch: a group of link changes as one message.
func doBatch(l Links, batch []Step) error {
	if len(batch) == 1 {
		return batch[0].Do(l)
	}
	var ch rtnl.Change
	for _, s := range batch {
		do, _ := s.(linkStep).changes()
		ch = ch.Merge(do)
	}
	if err := l.SetLink(batch[0].(linkStep).linkIndex(), ch); err != nil {
		return sysErr(err, "%s", describeBatch(batch))
	}
	return nil
}

// undoBatch reverts a batch that may have been applied in part: the kernel
// applies an RTM_NEWLINK's attributes one after another and does not roll
// back the earlier ones when a later one fails. Each undo value is what was
// there before, so restoring all of them is right whatever got applied.
func undoBatch(l Links, batch []Step) error {
	if len(batch) == 1 {
		return batch[0].Undo(l)
	}
	var ch rtnl.Change
	for i := len(batch) - 1; i >= 0; i-- {
		_, undo := batch[i].(linkStep).changes()
		ch = ch.Merge(undo)
	}
	if err := l.SetLink(batch[0].(linkStep).linkIndex(), ch); err != nil {
		return sysErr(err, "undo %s", describeBatch(batch))
	}
	return nil
}

// describeSteps says what a batch did in one line: one ip(8) command for
// link changes, the steps joined by "; " otherwise.
func describeSteps(batch []Step) string {
	if len(batch) == 1 {
		return batch[0].String()
	}
	if _, ok := batch[0].(linkStep); ok {
		return describeBatch(batch)
	}
	parts := make([]string, len(batch))
	for i, s := range batch {
		parts[i] = s.String()
	}
	return strings.Join(parts, "; ")
}

// describeBatch joins a batch into one ip(8) command:
// "ip link set dev vnet0 address A mtu 1500 master br0 up".
func describeBatch(batch []Step) string {
	args := make([]string, len(batch))
	for i, s := range batch {
		args[i] = s.(linkStep).args()
	}
	return linkCmd(batch[0].(linkStep).linkName(), args...)
}

// applyAll applies steps in order, all or nothing: when one fails, the
// steps already done are undone in reverse, and the original error is
// returned (with a note if the rollback itself failed), so its Kind, and
// the exit status, survive.
func applyAll(l Links, steps []Step, log *Log, ctx string) error {
	bs := batches(steps)
	for i, b := range bs {
		if err := doBatch(l, b); err != nil {
			var rbErrs []string
			for k := i; k >= 0; k-- {
				if rb := undoBatch(l, bs[k]); rb != nil {
					rbErrs = append(rbErrs, rb.Error())
				}
			}
			if len(rbErrs) > 0 {
				log.Failure(fmt.Errorf("%s: rollback incomplete: %s", ctx, strings.Join(rbErrs, "; ")))
				return &kindError{KindOf(err), fmt.Errorf("%w (rollback incomplete: %s)", err, strings.Join(rbErrs, "; "))}
			}
			log.Change("%s: rolled back after failure: %v", ctx, err)
			return err
		}
		log.Applied(ctx, b)
	}
	return nil
}

// applyBestEffort tries every step even when some fail, as teardown must,
// and returns the failures joined on one line; the Kind is the first's.
func applyBestEffort(l Links, steps []Step, log *Log, ctx string) error {
	// Fast path: one message for the whole batch; on failure, step by step.
	bs := batches(steps)
	var errs []error
	for _, b := range bs {
		if err := doBatch(l, b); err == nil {
			log.Applied(ctx, b)
			continue
		} else if len(b) == 1 {
			errs = append(errs, err)
			continue
		}
		for _, s := range b {
			if err := s.Do(l); err != nil {
				errs = append(errs, err)
			} else {
				log.Applied(ctx, []Step{s})
			}
		}
	}
	return joinErrors(errs)
}
