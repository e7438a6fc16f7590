package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The OpenAPI document is generated from the route table — the same table
// the mux is built from — and from the Go types of the responses, so that
// it cannot drift from the handlers; TestOpenAPIMatchesHandlers checks the
// routes the mux answers against it and every documented response against
// its schema.

func (s *server) openAPI(*http.Request, Scope) (result, error) {
	s.docOnce.Do(func() {
		b, err := json.Marshal(s.document())
		if err != nil {
			panic(err) // the document is built from Go types: a bug
		}
		s.docJSON = b
	})
	return result{body: json.RawMessage(s.docJSON)}, nil
}

type schemas struct {
	defs map[string]any
}

func (sc *schemas) of(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case reflect.TypeFor[json.RawMessage]():
		return map[string]any{"description": "Any JSON value."}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return sc.of(t.Elem())
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": sc.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": sc.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{"description": "Any JSON value."}
	case reflect.Struct:
		name := schemaName(t)
		if _, ok := sc.defs[name]; !ok {
			sc.defs[name] = nil // placeholder against recursion
			props := map[string]any{}
			var required []string
			sc.fields(t, props, &required)
			sort.Strings(required)
			def := map[string]any{"type": "object", "properties": props}
			if len(required) > 0 {
				def["required"] = required
			}
			sc.defs[name] = def
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (sc *schemas) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				sc.fields(ft, props, required)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = sc.of(f.Type)
		if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}

func schemaName(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	n := t.Name()
	if n == "" {
		n = "Anonymous"
	}
	if pkg == "api" || pkg == "" {
		return n
	}
	return strings.ToUpper(pkg[:1]) + pkg[1:] + n
}

func (s *server) document() map[string]any {
	sc := &schemas{defs: map[string]any{}}
	errRef := sc.of(reflect.TypeFor[ErrorBody]())
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
	}
	paths := map[string]any{}
	for _, rt := range append(slices.Clip(s.routes), auditRoutes()...) {
		var params []any
		for _, p := range rt.params {
			schema := map[string]any{"type": p.typ}
			if p.typ == "integer" {
				schema["format"] = "int64"
			}
			if len(p.enum) > 0 {
				schema["enum"] = p.enum
			}
			params = append(params, map[string]any{"name": p.name, "in": p.in, "required": p.required || p.in == "path",
				"description": p.desc, "schema": schema})
		}
		content := map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(rt.response))}}
		if rt.csv {
			content["text/csv"] = map[string]any{"schema": map[string]any{"type": "string"}}
		}
		status := "200"
		if rt.status != 0 {
			status = strconv.Itoa(rt.status)
		}
		responses := map[string]any{
			status: map[string]any{"description": "OK", "content": content},
			"400":  errResp("Bad request"),
			"500":  errResp("Internal error"),
			"503":  errResp("Not ready or unavailable"),
		}
		if rt.action {
			responses["409"] = errResp("Rejected by the ledger: the target's state forbids it (error.reason is the reason code)")
			responses["422"] = errResp("Rejected by the ledger (error.reason is the reason code)")
			responses["504"] = errResp("The ledger has not answered in time; repeat the request")
		}
		if !rt.public {
			responses["401"] = errResp("Unknown caller")
			responses["403"] = errResp("Outside the caller's scope")
			responses["404"] = errResp("Not found (or not in the caller's scope)")
		}
		if rt.gone {
			responses["410"] = errResp("Erased (crypto-shredded)")
		}
		op := map[string]any{"operationId": rt.id, "summary": rt.summary, "responses": responses}
		if rt.request != nil {
			op["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(rt.request))}}}
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.request != nil {
			op["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(rt.request))}}}
		}
		if rt.public {
			op["security"] = []any{}
		}
		item, _ := paths[rt.pattern].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.pattern] = item
		}
		item[strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":   "Subsidy ledger read API",
			"version": "1",
			"description": "Read models of the subsidy ledger of Chongqing's Digital Technology Engineer Training Programme. " +
				"Money is integer fen. Every operation applies the caller's scope (municipal, auditor, district:<unit>, institution:<id>), " +
				"taken from the bearer token (Authorization: Bearer <token>; ledgerd --api-tokens). " +
				"Maker/checker actions record the token's official. In --demo the X-Ledger-Scope and X-Ledger-Official headers stand in.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": sc.defs,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer",
					"description": "A token of the tokens file; its scope is municipal | auditor | district:<unit code> | institution:<institution id>."},
				"scope": map[string]any{"type": "apiKey", "in": "header", "name": ScopeHeader,
					"description": "--demo only: municipal | auditor | district:<unit code> | institution:<institution id>"},
			},
		},
		"security": []any{map[string]any{"bearer": []any{}}, map[string]any{"scope": []any{}}},
	}
}
