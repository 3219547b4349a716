package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/exit"
)

// TestREADMEExitCodes keeps README's table equal to the one in the code
// (exit.Table), which `ifhook help` prints.
func TestREADMEExitCodes(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	help := Usage()
	for _, c := range exit.Table {
		row := fmt.Sprintf("| %d | %d | %s | %s |", c.Code, c.Code*256, c.Name, c.Meaning)
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row %q", row)
		}
		line := fmt.Sprintf("%3d  status %5d  %-15s %s", c.Code, c.Code*256, c.Name, c.Meaning)
		if !strings.Contains(help, line) {
			t.Errorf("ifhook help lacks %q", line)
		}
	}
}
