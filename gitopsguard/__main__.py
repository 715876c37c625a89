from gitopsguard.cli import main

main()
