package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// junitCase is one <testcase> of ginkgo's JUnit report (see ginkgo's
// reporters/junit_report.go): Name is "[<node type>] <spec text>" followed by
// " [label, ...]" when the spec has labels; Status is ginkgo's spec state.
type junitCase struct {
	Name    string  `xml:"name,attr"`
	Status  string  `xml:"status,attr"`
	Time    float64 `xml:"time,attr"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	Failure *junitProblem `xml:"failure"`
	Error   *junitProblem `xml:"error"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// parseJUnit reads a JUnit report: a <testsuites> document (ginkgo's) or a
// single <testsuite>.
func parseJUnit(r io.Reader) ([]junitCase, error) {
	var doc struct {
		XMLName xml.Name
		Suites  []struct {
			Cases []junitCase `xml:"testcase"`
		} `xml:"testsuite"`
		Cases []junitCase `xml:"testcase"`
	}
	if err := xml.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse junit: %w", err)
	}
	out := doc.Cases
	for _, s := range doc.Suites {
		out = append(out, s.Cases...)
	}
	return out, nil
}

// itPrefix starts the name of every spec ("It" leaf node) in ginkgo's report;
// suite nodes have other prefixes ("[SynchronizedBeforeSuite]", ...).
const itPrefix = "[It] "

// specText returns the spec text of an "It" case, and false for a suite node.
func (c junitCase) specText() (string, bool) {
	return strings.CutPrefix(c.Name, itPrefix)
}

// problem returns the failure or error element, if any.
func (c junitCase) problem() *junitProblem {
	if c.Failure != nil {
		return c.Failure
	}
	return c.Error
}
