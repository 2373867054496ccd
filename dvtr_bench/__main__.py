from dvtr_bench.cli import main

main()
