// Command gointerop checks a Clearance log with Go's own golang.org/x/mod/sumdb
// packages (note and tlog), and signs notes for Clearance to verify.
//
// Modes:
//
//	gointerop verify PUBLICDIR VKEY PROOFS.json   checkpoint (note.Open), tiles (tlog.TileHashReader),
//	                                              every entry (tlog.ProveRecord / CheckRecord), and
//	                                              Clearance's own proofs (CheckRecord / CheckTree)
//	gointerop sign SKEY TEXTFILE                  prints a note signed by note.Sign
//	gointerop paths                               prints tlog tile paths, one per line
//	gointerop hash ENTRIES                        hashes length-prefixed entries as a Go log server
//	                                              would (tlog.StoredHashes), prints seconds and root
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gointerop: "+format+"\n", args...)
	os.Exit(1)
}

// dirTiles reads C2SP tlog-tiles from a directory. Go's own paths carry the
// tile height ("tile/8/0/...") and call entry bundles "data"; C2SP drops the
// height and says "entries".
type dirTiles struct {
	root  string
	reads int
}

func c2spPath(t tlog.Tile) string {
	p := t.Path()
	p = strings.Replace(p, fmt.Sprintf("tile/%d/data/", t.H), "tile/entries/", 1)
	return strings.Replace(p, fmt.Sprintf("tile/%d/", t.H), "tile/", 1)
}

func (d *dirTiles) read(t tlog.Tile) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(d.root, c2spPath(t)))
	if errors.Is(err, os.ErrNotExist) && t.W != 1<<height {
		// The log removes partial tiles once the full tile exists.
		full := t
		full.W = 1 << height
		data, err = os.ReadFile(filepath.Join(d.root, c2spPath(full)))
		if err == nil && t.L >= 0 {
			data = data[:t.W*tlog.HashSize]
		}
	}
	return data, err
}

func (d *dirTiles) Height() int { return height }

func (d *dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := d.read(t)
		if err != nil {
			return nil, err
		}
		d.reads++
		out[i] = data
	}
	return out, nil
}

func (d *dirTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func parseCheckpoint(text string) (origin string, tree tlog.Tree) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		fail("checkpoint has %d lines", len(lines))
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size: %v", err)
	}
	h, err := tlog.ParseHash(lines[2])
	if err != nil {
		fail("checkpoint root: %v", err)
	}
	return lines[0], tlog.Tree{N: n, Hash: h}
}

func entriesOfBundle(data []byte, want int) [][]byte {
	var out [][]byte
	for len(out) < want {
		if len(data) < 2 {
			fail("entry bundle truncated")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			fail("entry bundle truncated inside an entry")
		}
		out = append(out, data[2:2+n])
		data = data[2+n:]
	}
	return out
}

type proofs struct {
	Inclusion []struct {
		Index int64    `json:"index"`
		Size  int64    `json:"size"`
		Leaf  string   `json:"leaf_hash"`
		Root  string   `json:"root"`
		Proof []string `json:"proof"`
	} `json:"inclusion"`
	Consistency []struct {
		Old     int64    `json:"old"`
		New     int64    `json:"new"`
		OldRoot string   `json:"old_root"`
		NewRoot string   `json:"new_root"`
		Proof   []string `json:"proof"`
	} `json:"consistency"`
}

func hashes(list []string) []tlog.Hash {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := tlog.ParseHash(s)
		if err != nil {
			fail("proof hash %q: %v", s, err)
		}
		out[i] = h
	}
	return out
}

func mustHash(s string) tlog.Hash {
	h, err := tlog.ParseHash(s)
	if err != nil {
		fail("hash %q: %v", s, err)
	}
	return h
}

func verify(publicDir, vkey, proofFile string) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	msg, err := os.ReadFile(filepath.Join(publicDir, "checkpoint"))
	if err != nil {
		fail("%v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("note.Open rejected the checkpoint: %v", err)
	}
	origin, tree := parseCheckpoint(n.Text)
	if origin != verifier.Name() {
		fail("origin %q is not the key name %q", origin, verifier.Name())
	}
	tiles := &dirTiles{root: publicDir}
	reader := tlog.TileHashReader(tree, tiles)
	root, err := tlog.TreeHash(tree.N, reader)
	if err != nil || root != tree.Hash {
		fail("tlog.TreeHash from the tiles: %v (got %v, checkpoint says %v)", err, root, tree.Hash)
	}
	// Every entry: read from the bundles, proved by tlog from the tiles alone.
	checked := int64(0)
	for bundle := int64(0); bundle*256 < tree.N; bundle++ {
		width := tree.N - bundle*256
		if width > 256 {
			width = 256
		}
		data, err := tiles.read(tlog.Tile{H: height, L: -1, N: bundle, W: int(width)})
		if err != nil {
			fail("entry bundle %d: %v", bundle, err)
		}
		for i, entry := range entriesOfBundle(data, int(width)) {
			index := bundle*256 + int64(i)
			proof, err := tlog.ProveRecord(tree.N, index, reader)
			if err != nil {
				fail("tlog.ProveRecord(%d): %v", index, err)
			}
			if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(entry)); err != nil {
				fail("tlog.CheckRecord(%d): %v", index, err)
			}
			checked++
		}
	}
	var ps proofs
	raw, err := os.ReadFile(proofFile)
	if err != nil {
		fail("%v", err)
	}
	if err := json.Unmarshal(raw, &ps); err != nil {
		fail("proofs: %v", err)
	}
	for _, p := range ps.Inclusion {
		err := tlog.CheckRecord(tlog.RecordProof(hashes(p.Proof)), p.Size, mustHash(p.Root), p.Index, mustHash(p.Leaf))
		if err != nil {
			fail("Clearance inclusion proof %d@%d rejected: %v", p.Index, p.Size, err)
		}
	}
	for _, p := range ps.Consistency {
		err := tlog.CheckTree(tlog.TreeProof(hashes(p.Proof)), p.New, mustHash(p.NewRoot), p.Old, mustHash(p.OldRoot))
		if err != nil {
			fail("Clearance consistency proof %d->%d rejected: %v", p.Old, p.New, err)
		}
		// And Go's own proof from our tiles must agree with ours.
		mine, err := tlog.ProveTree(p.New, p.Old, tlog.TileHashReader(tree, tiles))
		if err != nil || len(mine) != len(p.Proof) {
			fail("tlog.ProveTree %d->%d: %v", p.Old, p.New, err)
		}
	}
	fmt.Printf("ok origin=%s size=%d entries=%d inclusion=%d consistency=%d tile_reads=%d\n",
		origin, tree.N, checked, len(ps.Inclusion), len(ps.Consistency), tiles.reads)
}

func sign(skey, textFile string) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		fail("signer key: %v", err)
	}
	text, err := os.ReadFile(textFile)
	if err != nil {
		fail("%v", err)
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		fail("note.Sign: %v", err)
	}
	os.Stdout.Write(msg)
}

func paths() {
	for _, t := range []tlog.Tile{
		{H: 8, L: 0, N: 0, W: 256}, {H: 8, L: 0, N: 1234067, W: 256}, {H: 8, L: 1, N: 5, W: 17},
		{H: 8, L: 2, N: 1000, W: 256}, {H: 8, L: -1, N: 999, W: 3}, {H: 8, L: -1, N: 1000000, W: 256},
	} {
		fmt.Printf("%d %d %d %s\n", t.L, t.N, t.W, c2spPath(t))
	}
}

// hash reads entries (uint16 length, bytes) and stores every hash a Go tlog
// server stores (tlog.StoredHashes), then the tree hash.
func hash(entriesFile string) {
	f, err := os.Open(entriesFile)
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	in := bufio.NewReaderSize(f, 1<<20)
	var entries [][]byte
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(in, lenBuf[:]); err == io.EOF {
			break
		} else if err != nil {
			fail("%v", err)
		}
		e := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(in, e); err != nil {
			fail("%v", err)
		}
		entries = append(entries, e)
	}
	stored := make([]tlog.Hash, 0, tlog.StoredHashCount(int64(len(entries))))
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = stored[x]
		}
		return out, nil
	})
	start := time.Now()
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, reader)
		if err != nil {
			fail("tlog.StoredHashes: %v", err)
		}
		stored = append(stored, hs...)
	}
	root, err := tlog.TreeHash(int64(len(entries)), reader)
	if err != nil {
		fail("tlog.TreeHash: %v", err)
	}
	elapsed := time.Since(start).Seconds()
	fmt.Printf("%d %.6f %s\n", len(entries), elapsed, base64.StdEncoding.EncodeToString(root[:]))
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: gointerop (verify|sign|paths|hash) ...")
	}
	switch os.Args[1] {
	case "verify":
		if len(os.Args) != 5 {
			fail("usage: gointerop verify PUBLICDIR VKEY PROOFS.json")
		}
		verify(os.Args[2], os.Args[3], os.Args[4])
	case "sign":
		if len(os.Args) != 4 {
			fail("usage: gointerop sign SKEY TEXTFILE")
		}
		sign(os.Args[2], os.Args[3])
	case "paths":
		paths()
	case "hash":
		if len(os.Args) != 3 {
			fail("usage: gointerop hash ENTRIES")
		}
		hash(os.Args[2])
	default:
		fail("unknown mode %q", os.Args[1])
	}
}
