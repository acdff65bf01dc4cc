package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/policy"
	"github.com/kubetrail/kubetrail/rules"
)

func newRulesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check Falco rule files, and list or reload the server's rules",
	}
	cmd.AddCommand(newRulesCheckCommand(), newRulesListCommand(), newRulesReloadCommand())
	return cmd
}

// ruleFileReport is what rules check says of one file.
type ruleFileReport struct {
	File     string                 `json:"file"`
	Rules    int                    `json:"rules"`
	Enabled  int                    `json:"enabled"`
	Disabled []kubetrail.RuleStatus `json:"disabled,omitempty"`
}

type rulesCheckReport struct {
	Files    []ruleFileReport `json:"files"`
	Rules    int              `json:"rules"`
	Enabled  int              `json:"enabled"`
	Missing  map[string]int   `json:"missing"` // field → rules disabled for lack of it
	Warnings []string         `json:"warnings,omitempty"`
}

func newRulesCheckCommand() *cobra.Command {
	var output string
	var withDefaults bool
	cmd := &cobra.Command{
		Use:   "check FILE...",
		Short: "Load Falco rule files as the server would and say what runs",
		Long: `Load Falco rule files in order, as one set (later files may append to or override
earlier ones), and print for each file how many rules it defines, how many kubetrail
runs, and why each other one does not: switched off in its file, a source kubetrail
has no events of, or fields kubetrail cannot fill. Then the fields missing across
all rules, by how many rules need each: the measured gap.

A file kubetrail cannot load (bad YAML, an unknown key, a condition that does not
parse, an undefined macro) is an error naming the file, line and rule, and the
command exits with status 1. Nothing is sent to a server.`,
		Example: `  kubetrail rules check falco_rules.yaml falco-incubating_rules.yaml
  kubetrail rules check --defaults my_rules.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			var files []rules.NamedFile
			if withDefaults {
				def, err := policy.DefaultRuleFileContents()
				if err != nil {
					return err
				}
				files = append(files, def...)
			}
			for _, a := range args {
				data, err := os.ReadFile(a)
				if err != nil {
					return kubetrail.Errorf(kubetrail.EINVALID, "read rule file: %v", err)
				}
				files = append(files, rules.NamedFile{Name: a, Data: data})
			}
			rs, err := rules.Load(files...)
			if err != nil {
				return err
			}
			eng, err := rules.Compile(rs)
			if err != nil {
				return err
			}
			rep := checkReport(rs, eng, files)
			if output != "table" {
				return writeStructured(cmd.OutOrStdout(), output, rep)
			}
			printCheckReport(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	cmd.Flags().BoolVar(&withDefaults, "defaults", false, "load kubetrail's embedded rule files first (Falco's stable and k8saudit rules, kubetrail's own), as the server does")
	return cmd
}

func checkReport(rs *rules.Ruleset, eng *rules.Engine, files []rules.NamedFile) rulesCheckReport {
	rep := rulesCheckReport{Missing: eng.Missing, Warnings: rs.Warnings}
	byFile := map[string]*ruleFileReport{}
	for _, f := range files {
		rep.Files = append(rep.Files, ruleFileReport{File: f.Name})
	}
	for i := range rep.Files {
		byFile[rep.Files[i].File] = &rep.Files[i]
	}
	for _, st := range eng.Status {
		fr := byFile[st.Rule.File]
		if fr == nil {
			continue
		}
		fr.Rules++
		rep.Rules++
		if st.Enabled {
			fr.Enabled++
			rep.Enabled++
			continue
		}
		fr.Disabled = append(fr.Disabled, kubetrail.RuleStatus{Name: st.Rule.Name, File: st.Rule.File, Source: st.Rule.Source,
			Priority: st.Rule.Priority, Tags: st.Rule.Tags, Reason: st.Reason, Missing: st.Missing})
	}
	return rep
}

func printCheckReport(w io.Writer, rep rulesCheckReport) {
	for _, f := range rep.Files {
		fmt.Fprintf(w, "%s: %d rules, %d run, %d disabled\n", f.File, f.Rules, f.Enabled, len(f.Disabled))
		for _, d := range f.Disabled {
			fmt.Fprintf(w, "  %-55s %s\n", d.Name, d.Reason)
		}
	}
	fmt.Fprintf(w, "\nAll files: %d rules, %d run, %d disabled\n", rep.Rules, rep.Enabled, rep.Rules-rep.Enabled)
	if len(rep.Missing) > 0 {
		fmt.Fprintln(w, "\nFields kubetrail cannot fill, by the rules disabled for want of each:")
		fields := slices.SortedFunc(maps.Keys(rep.Missing), func(a, b string) int {
			if d := rep.Missing[b] - rep.Missing[a]; d != 0 {
				return d
			}
			return strings.Compare(a, b)
		})
		for _, f := range fields {
			fmt.Fprintf(w, "  %-40s %d\n", f, rep.Missing[f])
		}
	}
	for _, wn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
}
