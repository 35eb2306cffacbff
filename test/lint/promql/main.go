// Command promql-check parses PromQL expressions with the Prometheus parser
// itself, so the chart's alert rules and dashboard queries are checked
// offline. Input: a JSON array of {"name", "expr"} on stdin. Output: one line
// per expression that fails to parse, "<name>: <error>"; exit 1 if any.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/promql/parser"
)

type query struct {
	Name string `json:"name"`
	Expr string `json:"expr"`
}

func main() {
	var queries []query
	if err := json.NewDecoder(os.Stdin).Decode(&queries); err != nil {
		fmt.Fprintf(os.Stderr, "promql-check: stdin is not a JSON array of {name, expr}: %v\n", err)
		os.Exit(2)
	}
	// Default options: the stable function set, as a stock Prometheus accepts it.
	p := parser.NewParser(parser.Options{})
	failed := 0
	for _, q := range queries {
		if _, err := p.ParseExpr(q.Expr); err != nil {
			fmt.Printf("%s: %v\n", q.Name, err)
			failed++
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}
