package kubetrail

import "fmt"

// Batch is what a node agent (or the demo simulator, which plays one) sends in one
// request: runtime events of one stream in sequence order, and the inventory
// observations it made since its last batch.
type Batch struct {
	// Stream names the sender's event stream: one per agent start, so that sequence
	// numbers restart safely. Letters, digits and . _ : - only; at most 128 bytes.
	Stream    string
	Events    []Event
	Inventory []InventoryObject
}

// ValidStream reports whether s can name a stream; event ids are "<stream>/<seq>",
// so the slash is excluded.
func ValidStream(s string) error {
	if s == "" {
		return fmt.Errorf("stream name is empty")
	}
	if len(s) > 128 {
		return fmt.Errorf("stream name is %d bytes long, at most 128 are allowed", len(s))
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == ':', r == '-':
		default:
			return fmt.Errorf("stream name has %q at byte %d; only letters, digits and . _ : - are allowed", r, i)
		}
	}
	return nil
}
