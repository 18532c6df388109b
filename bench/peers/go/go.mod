module taskpoold/bench/peers/go

go 1.19
