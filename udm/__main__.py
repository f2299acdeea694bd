from udm.cli import main

main()
