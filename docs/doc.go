// Package docs holds netcore's documentation. Its tests keep the guide's
// code true: every Go block in guide.md is taken from the Example functions
// here, which compile and run with go test.
package docs
