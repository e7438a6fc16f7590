// Package apitest helps test the API: it fills a store with a generated
// history and validates JSON responses against the OpenAPI document.
package apitest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/projections/gen"
)

// Today is the day the generated history stops at (notices open, payments
// in flight): 2026-05-20.
var Today = refdata.D(2026, time.May, 20)

// Generate appends a plausible history to store: n trainees registering
// over 2025 and 2026 (about 12 events each), stopped at Today.
func Generate(ctx context.Context, store events.Store, n int) error {
	_, err := gen.Append(ctx, store, gen.Config{Seed: 2026, Trainees: n, FirstYear: 2025, LastYear: 2026, Until: Today}, gen.AppendOptions{})
	return err
}

// Validator checks JSON values against the schemas of an OpenAPI 3
// document (decoded into map[string]any): types, required properties, and
// no properties the schema does not declare.
type Validator struct {
	Doc map[string]any
}

// Response validates body against the schema of the response status of
// the operation (path, lower-case method).
func (v *Validator) Response(path, method, status string, body any) error {
	op, err := dig(v.Doc, "paths", path, method, "responses", status, "content", "application/json", "schema")
	if err != nil {
		return err
	}
	return v.check("$", op.(map[string]any), body)
}

func dig(m any, keys ...string) (any, error) {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document: %s is not an object", k)
		}
		if m, ok = mm[k]; !ok {
			return nil, fmt.Errorf("document: no %q under %v", k, keys)
		}
	}
	return m, nil
}

func (v *Validator) resolve(s map[string]any) (map[string]any, error) {
	ref, ok := s["$ref"].(string)
	if !ok {
		return s, nil
	}
	name := strings.TrimPrefix(ref, "#/components/schemas/")
	d, err := dig(v.Doc, "components", "schemas", name)
	if err != nil {
		return nil, err
	}
	m, ok := d.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema %s is not an object", name)
	}
	return m, nil
}

func (v *Validator) check(path string, s map[string]any, val any) error {
	s, err := v.resolve(s)
	if err != nil {
		return err
	}
	typ, _ := s["type"].(string)
	switch typ {
	case "":
		return nil // any value
	case "object":
		obj, ok := val.(map[string]any)
		if !ok {
			if val == nil {
				return nil // nil maps and absent objects encode as null
			}
			return fmt.Errorf("%s: %T, want an object", path, val)
		}
		props, _ := s["properties"].(map[string]any)
		if ap, ok := s["additionalProperties"].(map[string]any); ok && props == nil {
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if err := v.check(path+"."+k, ap, obj[k]); err != nil {
					return err
				}
			}
			return nil
		}
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				return fmt.Errorf("%s: required property %q missing", path, r)
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := props[k].(map[string]any)
			if !ok {
				return fmt.Errorf("%s: property %q is not in the schema", path, k)
			}
			if err := v.check(path+"."+k, ps, obj[k]); err != nil {
				return err
			}
		}
	case "array":
		arr, ok := val.([]any)
		if !ok {
			if val == nil {
				return nil
			}
			return fmt.Errorf("%s: %T, want an array", path, val)
		}
		items, _ := s["items"].(map[string]any)
		for i, e := range arr {
			if err := v.check(fmt.Sprintf("%s[%d]", path, i), items, e); err != nil {
				return err
			}
		}
	case "string":
		if _, ok := val.(string); !ok {
			return fmt.Errorf("%s: %T, want a string", path, val)
		}
		if enum, ok := s["enum"].([]any); ok {
			for _, e := range enum {
				if e == val {
					return nil
				}
			}
			return fmt.Errorf("%s: %v not in %v", path, val, enum)
		}
	case "integer":
		f, ok := val.(float64)
		if !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s: %v, want an integer", path, val)
		}
	case "number":
		if _, ok := val.(float64); !ok {
			return fmt.Errorf("%s: %T, want a number", path, val)
		}
	case "boolean":
		if _, ok := val.(bool); !ok {
			return fmt.Errorf("%s: %T, want a boolean", path, val)
		}
	default:
		return fmt.Errorf("%s: schema type %q unknown", path, typ)
	}
	return nil
}
