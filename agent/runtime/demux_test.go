package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func frame(stream byte, s string) []byte {
	h := []byte{stream, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

// The demultiplexer gives the payloads in order, whatever the reads'
// sizes and however the stream arrives (one byte at a time too), and
// fills a read with every frame already buffered.
func TestDemux(t *testing.T) {
	var in bytes.Buffer
	var want strings.Builder
	for i := range 1000 {
		s := strings.Repeat(string(rune('a'+i%26)), i%150) + "\n"
		in.Write(frame(byte(1+i%2), s))
		want.WriteString(s)
	}
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(in.Bytes()),
		"one byte": iotest.OneByteReader(bytes.NewReader(in.Bytes())),
		"halves":   iotest.HalfReader(bytes.NewReader(in.Bytes())),
	} {
		got, err := io.ReadAll(newDemux(io.NopCloser(r)))
		if err != nil || string(got) != want.String() {
			t.Fatalf("%s: %d bytes, %v; want %d bytes", name, len(got), err, want.Len())
		}
	}
	d := newDemux(io.NopCloser(bytes.NewReader(in.Bytes())))
	p := make([]byte, 32<<10)
	if n, err := d.Read(p); err != nil || n != len(p) {
		t.Fatalf("first read of a buffered stream: %d bytes, %v; want a full %d", n, err, len(p))
	}
	cut := append(frame(1, "ok\n"), 1, 0, 0)
	got, err := io.ReadAll(newDemux(io.NopCloser(bytes.NewReader(cut))))
	if string(got) != "ok\n" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut header: %q %v", got, err)
	}
}
