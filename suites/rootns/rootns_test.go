package rootns_test

import (
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	"github.com/tcplab/tcplab/harness/rootns"
)

var _ = Describe("the root namespace", Label("rootns"), func() {
	It("is byte-identical after a full suite run", func() {
		path := os.Getenv("TCPLAB_ROOTNS_BEFORE")
		if path == "" {
			SkipUnless(errNoSnapshot)
		}
		before, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		after, err := rootns.Snapshot()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(after)).To(Equal(string(before)))
	})
})

type noSnapshot struct{}

func (noSnapshot) Error() string {
	return "TCPLAB_ROOTNS_BEFORE is unset: run through `make test`, which snapshots the root namespace first"
}

var errNoSnapshot error = noSnapshot{}
