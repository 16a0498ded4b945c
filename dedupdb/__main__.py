from dedupdb.cli import main

main()
