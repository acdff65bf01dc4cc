package duckdb

import (
	"fmt"
	"strings"

	"github.com/kubetrail/kubetrail"
)

// column maps one stored field to its column in the events table.
type column struct {
	field *kubetrail.Field
	name  string // SQL identifier
	sql   string // SQL type
}

// columns lists the fields stored in the events table itself, in reference order;
// the fields of each dimension go to its own table. Both derive from the field
// reference, so adding a field to the reference adds its column.
var columns = func() []column {
	var ev []column
	for i := range kubetrail.Fields {
		f := &kubetrail.Fields[i]
		if f.Derived {
			continue
		}
		c := column{field: f, name: columnName(f.Name), sql: sqlType(f)}
		if d := dimensionOf(f.Name); d != nil {
			d.columns = append(d.columns, c)
		} else {
			ev = append(ev, c)
		}
	}
	return ev
}()

var columnByField = func() map[string]*column {
	m := map[string]*column{}
	for i := range columns {
		m[columns[i].field.Name] = &columns[i]
	}
	for _, d := range dimensions {
		for i := range d.columns {
			m[d.columns[i].field.Name] = &d.columns[i]
		}
	}
	return m
}()

func columnName(field string) string { return strings.ReplaceAll(field, ".", "_") }

func sqlType(f *kubetrail.Field) string {
	switch f.Name {
	case "evt.category":
		// An ENUM is one byte per row and its order is the reference order.
		return "category"
	}
	switch f.Type {
	case kubetrail.TypeInt:
		return "BIGINT"
	case kubetrail.TypeTime:
		return "TIMESTAMP_NS"
	case kubetrail.TypeStrings:
		return "VARCHAR[]"
	}
	return "VARCHAR"
}

// derivedSQL computes each derived field from stored columns. Every derived field
// of the reference must be here; TestDerivedFieldsMatchGo checks they agree with Go.
var derivedSQL = map[string]string{
	// A policy event's id is kubetrail.PolicyEventID: DuckDB's md5 is the same
	// lowercase hex as Go's hex.EncodeToString.
	"evt.id":          `CASE evt_category WHEN 'k8s' THEN 'audit/' || ka_auditid WHEN 'policy' THEN 'policy/' || md5(` + policyKeySQL + `) ELSE evt_stream || '/' || evt_seq END`,
	"evt.source":      `CASE evt_category WHEN 'k8s' THEN 'k8s_audit' WHEN 'policy' THEN policy_source ELSE 'syscall' END`,
	"container.image": `CASE WHEN container_image_tag IS NULL THEN container_image_repository ELSE container_image_repository || ':' || container_image_tag END`,
	// A Kubernetes request, and a policy event raised on one, happened on no node.
	"evt.is_host":  `CASE WHEN evt_category = 'k8s' THEN NULL WHEN evt_category = 'policy' AND policy_source IS DISTINCT FROM 'syscall' THEN NULL WHEN container_id IS NULL THEN 1 ELSE 0 END`,
	"proc.exe":     `proc_argv[1]`,
	"proc.args":    `CASE WHEN len(proc_argv) > 1 THEN array_to_string(proc_argv[2:], ' ') ELSE CASE WHEN proc_argv IS NULL THEN NULL ELSE '' END END`,
	"proc.cmdline": `CASE WHEN len(proc_argv) > 1 THEN proc_name || ' ' || array_to_string(proc_argv[2:], ' ') ELSE proc_name END`,
	"fd.lip":       `CASE WHEN net_direction = 'inbound' THEN fd_sip ELSE fd_cip END`,
	"fd.lport":     `CASE WHEN net_direction = 'inbound' THEN fd_sport ELSE fd_cport END`,
	"fd.rip":       `CASE WHEN net_direction = 'inbound' THEN fd_cip ELSE fd_sip END`,
	"fd.rport":     `CASE WHEN net_direction = 'inbound' THEN fd_cport ELSE fd_sport END`,
	"fd.name":      `CASE evt_category WHEN 'file' THEN fs_path_name WHEN 'network' THEN fd_cip || ':' || fd_cport || '->' || fd_sip || ':' || fd_sport END`,
	"fd.directory": `CASE WHEN fs_path_name IS NULL THEN NULL WHEN strpos(fs_path_name, '/') = 0 THEN '' WHEN regexp_extract(fs_path_name, '^(.*)/[^/]*$', 1) = '' THEN '/' ELSE regexp_extract(fs_path_name, '^(.*)/[^/]*$', 1) END`,
	"fd.filename":  `regexp_extract(fs_path_name, '[^/]*$')`,
}

// policyKeySQL is what a policy event's id is the MD5 of (see
// kubetrail.PolicyEventID): its trigger, policy and rule, newline-separated.
// Without the MD5 it also orders policy events of the same time (tiebreakDesc).
const policyKeySQL = `policy_trigger || chr(10) || policy_name || chr(10) || policy_rule`

// fieldSQL returns the SQL expression for a field: its column or its derivation.
func fieldSQL(name string) (string, error) {
	if c, ok := columnByField[name]; ok {
		return c.name, nil
	}
	if expr, ok := derivedSQL[name]; ok {
		return "(" + expr + ")", nil
	}
	return "", fmt.Errorf("field %s has no column", name)
}

func schemaSQL() string {
	var b strings.Builder
	var cats []string
	for _, c := range kubetrail.Categories {
		cats = append(cats, "'"+string(c)+"'")
	}
	fmt.Fprintf(&b, "CREATE TYPE IF NOT EXISTS category AS ENUM (%s);\n", strings.Join(cats, ", "))
	for _, d := range dimensions {
		b.WriteString(d.createSQL())
	}
	var defs []string
	for _, d := range dimensions {
		defs = append(defs, d.idColumn+" BIGINT")
	}
	for _, c := range columns {
		def := c.name + " " + c.sql
		if c.field.Name == "evt.time" || c.field.Name == "evt.category" {
			def += " NOT NULL"
		}
		defs = append(defs, def)
	}
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS events (\n  %s\n);\n", strings.Join(defs, ",\n  "))
	// The highest sequence number stored per stream: the dedupe mark for retried
	// batches, written in the same transaction as the events it covers.
	b.WriteString("CREATE TABLE IF NOT EXISTS streams (stream VARCHAR PRIMARY KEY, seq BIGINT NOT NULL, updated TIMESTAMP NOT NULL);\n")
	b.WriteString(`CREATE TABLE IF NOT EXISTS inventory (
  time TIMESTAMP_NS NOT NULL, cluster VARCHAR, kind VARCHAR NOT NULL, namespace VARCHAR, name VARCHAR NOT NULL,
  uid VARCHAR, ips VARCHAR[], node VARCHAR, workload_kind VARCHAR, workload_name VARCHAR, deleted BOOLEAN NOT NULL
);
`)
	b.WriteString(sessionsSchema)
	// A session's trace starts from its processes: the index finds them in a
	// fraction of a millisecond rather than scanning the table (measured on ten
	// million events: trace 26 ms without, 21 ms with).
	b.WriteString("CREATE INDEX IF NOT EXISTS processes_session ON processes (session_id);\n")
	// Data dirs written before the column existed.
	b.WriteString("ALTER TABLE sessions ADD COLUMN IF NOT EXISTS req_candidates VARCHAR[];\n")
	b.WriteString("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);\n")
	return b.String()
}

// schemaVersion is bumped when the events table changes incompatibly; a data dir
// written by another version is refused rather than misread.
const schemaVersion = "8"
