// Package deploy holds the tests of the repository's deployment files
// (Dockerfile, compose.yaml); it has no code of its own.
package deploy
