package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// CSV exports flatten a slice of structs into columns named after the JSON
// fields: a nested struct's fields become "parent.child", an embedded
// struct's fields are inlined (as in JSON), a slice of strings is joined
// with spaces and any other slice is written as its JSON.

type column struct {
	name  string
	index []int
}

var timeType = reflect.TypeFor[time.Time]()

func columns(t reflect.Type, prefix string, index []int) []column {
	var out []column
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			out = append(out, columns(ft, prefix, idx)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if ft.Kind() == reflect.Struct && ft != timeType {
			out = append(out, columns(ft, prefix+name+".", idx)...)
			continue
		}
		out = append(out, column{name: prefix + name, index: idx})
	}
	return out
}

func cell(v reflect.Value) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		return inert(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.String {
			parts := make([]string, v.Len())
			for i := range parts {
				parts[i] = v.Index(i).String()
			}
			return inert(strings.Join(parts, " "))
		}
	case reflect.Struct:
		if v.Type() == timeType {
			return v.Interface().(time.Time).UTC().Format(time.RFC3339Nano)
		}
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return ""
	}
	return string(b)
}

// inert keeps a text cell from being taken for a formula by a spreadsheet
// (CSV injection): names, reasons and ids come from publishers, and a
// supervisor opens the export in Excel or WPS, which would run
// =HYPERLINK(...) or =cmd|... in a cell. A cell beginning with = + - @, a
// tab or a carriage return gets a leading apostrophe, which spreadsheets
// show as text and hide. Numbers are not text cells and stay as they are
// (a negative balance is a number).
func inert(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// fieldByIndex follows index through nil pointers (an absent nested struct
// gives empty cells).
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for _, i := range index {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	return v, true
}

// appendCSV writes rows (a slice of structs) to cw, with the header line
// first when header is set.
func appendCSV(cw *csv.Writer, rows any, header bool) error {
	v := reflect.ValueOf(rows)
	if v.Kind() != reflect.Slice {
		return fmt.Errorf("api: CSV of %T: not a slice", rows)
	}
	et := v.Type().Elem()
	if et.Kind() == reflect.Pointer {
		et = et.Elem()
	}
	if et.Kind() != reflect.Struct {
		return fmt.Errorf("api: CSV of %T: not a slice of structs", rows)
	}
	cols := columns(et, "", nil)
	if header {
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.name
		}
		if err := cw.Write(names); err != nil {
			return err
		}
	}
	rec := make([]string, len(cols))
	for i := range v.Len() {
		row := v.Index(i)
		for j, c := range cols {
			f, ok := fieldByIndex(row, c.index)
			if !ok {
				rec[j] = ""
				continue
			}
			rec[j] = cell(f)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	return nil
}

func writeCSV(w io.Writer, rows any) error {
	cw := csv.NewWriter(w)
	if rows == nil {
		rows = []struct{}{}
	}
	if err := appendCSV(cw, rows, true); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// contextWithoutCancel returns a context that outlives the request but
// keeps its values, with a cancel for the caller's cleanup.
func contextWithoutCancel(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.WithoutCancel(r.Context()))
}
