package docs_test

import (
	"fmt"
	"net/netip"

	"github.com/netcore-go/netcore/core"
)

// Example_lossRepair is the guide's "Test your app on a bad network":
// the sending stack's link repairs random loss (Config.LossRepair) and
// counts what it did.
func Example_lossRepair() {
	sender, _ := core.New(core.Config{
		LossRepair: true, // the link repairs random loss; implies WindowControl
		Addrs:      []netip.Prefix{netip.MustParsePrefix("192.0.2.4/24")},
	})
	defer sender.Close()
	st := sender.Stats()
	fmt.Println(st.LossRepairs, st.LossRepairACKsHidden, st.LossRepairPassed, st.WindowsLowered)
	// Output: 0 0 0 0
}
