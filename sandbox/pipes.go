package sandbox

import (
	"os"
	"sync"
)

// Pipes hands data to a child process on descriptors 3, 4, ... (bwrap's
// options and seccomp filter, from ArgsFD) through pipes, so that none of
// it is on a command line.
type Pipes struct {
	r, w []*os.File
	data [][]byte
}

// NewPipes makes one pipe for each payload.
func NewPipes(data [][]byte) (*Pipes, error) {
	p := &Pipes{data: data}
	for range data {
		r, w, err := os.Pipe()
		if err != nil {
			p.Started(false)
			return nil, err
		}
		p.r, p.w = append(p.r, r), append(p.w, w)
	}
	return p, nil
}

// Files are the read ends, for exec.Cmd.ExtraFiles, in order.
func (p *Pipes) Files() []*os.File { return p.r }

// Started is called once exec.Cmd.Start has returned, ok when it started
// the child: this process's read ends are closed and, if ok, each payload
// is written and its pipe closed. It returns when all are written or the
// child has gone (a write then fails; a child that never reads one cannot
// hold it up once it exits).
func (p *Pipes) Started(ok bool) {
	for _, r := range p.r {
		r.Close()
	}
	var wg sync.WaitGroup
	for i, w := range p.w {
		if !ok {
			w.Close()
			continue
		}
		wg.Go(func() {
			// A pipe write fails only when the reader closed its end, so
			// it is not waiting for the rest: the launch fails there.
			_, _ = w.Write(p.data[i])
			w.Close()
		})
	}
	wg.Wait()
}
