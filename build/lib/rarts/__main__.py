from rarts.cli import main

main()
