// Package docs holds netcore's documentation. Its tests keep the guide's
// and the README's code true: every Go block is taken from the Example
// functions here, which compile and run with go test, and the blocks of
// each document compile as they stand, with nothing defined around them.
package docs
