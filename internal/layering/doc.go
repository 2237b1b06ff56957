// Package layering holds the test that keeps the import graph the one
// docs/ARCHITECTURE.md draws: its package table names every package of the
// module and what each may import, and the test fails on an import the
// table does not allow or a package it does not name.
package layering
