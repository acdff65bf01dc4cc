package kubetrail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// MarshalJSON writes the event as one flat object keyed by field names — the same
// names the filter language uses. Empty strings, lists and times are left out; numbers
// are written for every field that applies to the event's category, since 0 (root's
// uid, a clean exit) means something.
func (e *Event) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	for i := range Fields {
		f := &Fields[i]
		if !f.Shows(e.Category) {
			continue
		}
		v := f.Get(e)
		switch x := v.(type) {
		case string:
			if x == "" {
				continue
			}
		case []string:
			if len(x) == 0 {
				continue
			}
		case time.Time:
			if x.IsZero() {
				continue
			}
			v = x.UTC().Format(time.RFC3339Nano)
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		key, _ := json.Marshal(f.Name)
		buf.Write(key)
		buf.WriteByte(':')
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		buf.Write(val)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads the flat form MarshalJSON writes. Unknown keys are refused with
// a suggestion; derived fields (evt.id, proc.cmdline, ...) are accepted and ignored,
// since they are computed from the stored ones.
func (e *Event) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return err
	}
	*e = Event{}
	// Category first, so errors can speak of it; then the rest in reference order.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f := LookupField(k)
		if f == nil {
			if s := SuggestField(k); s != "" {
				return ErrorAt(EINVALID, k, "unknown field (did you mean %s?)", s)
			}
			return ErrorAt(EINVALID, k, "unknown field")
		}
		if f.Derived {
			continue
		}
		if err := f.set(e, m[k]); err != nil {
			return ErrorAt(EINVALID, k, "%v", err)
		}
	}
	return nil
}
