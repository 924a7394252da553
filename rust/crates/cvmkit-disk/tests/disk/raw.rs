use std::os::unix::fs::MetadataExt;
use std::process::Command;

use cvmkit_disk::{DiskSpec, Format};
use cvmkit_fat::FatVolume;
use cvmkit_gpt::{GptDisk, ESP, LINUX_DATA, LINUX_ROOT_X86_64};

use crate::util::*;

#[test]
fn partition_tools_accept_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = full_spec(tmp.path());
    let (disk, report) = build(&spec, Format::Raw, tmp.path(), "disk.raw");

    let verify = run_text(
        Command::new(require_tool("sfdisk", "fdisk"))
            .arg("--verify")
            .arg(&disk),
    );
    assert!(
        verify.contains("No errors detected.") && !verify.to_lowercase().contains("warning"),
        "{verify}"
    );
    let sg = run_text(
        Command::new(require_tool("sgdisk", "gdisk"))
            .arg("-v")
            .arg(&disk),
    );
    assert!(sg.contains("No problems found"), "{sg}");

    // sfdisk's view of every field we set.
    let json = run_text(
        Command::new(require_tool("sfdisk", "fdisk"))
            .arg("--json")
            .arg(&disk),
    );
    assert!(
        json.contains(&format!("\"id\": \"{:X}\"", report.disk_guid)),
        "{json}"
    );
    assert!(json.contains("\"firstlba\": 34,"), "{json}");
    assert!(
        json.contains(&format!("\"lastlba\": {},", report.disk_size / 512 - 34)),
        "{json}"
    );
    let types = [ESP, LINUX_ROOT_X86_64, LINUX_ROOT_X86_64, LINUX_DATA];
    let names = ["ESP", "root-x86-64", "root-x86-64-2", "data"];
    assert_eq!(report.partitions.len(), 4);
    let blocks: Vec<&str> = json.split("\"node\":").skip(1).collect();
    assert_eq!(blocks.len(), 4, "{json}");
    for (((p, t), n), block) in report.partitions.iter().zip(types).zip(names).zip(blocks) {
        assert_eq!(p.type_guid, t);
        assert_eq!(p.name, n);
        assert_eq!(p.offset % (1 << 20), 0, "{n} not 1 MiB-aligned");
        for field in [
            format!("\"start\": {},", p.offset / 512),
            format!("\"size\": {},", p.size / 512),
            format!("\"type\": \"{t:X}\""),
            format!("\"uuid\": \"{:X}\"", p.unique_guid),
            format!("\"name\": \"{n}\""),
        ] {
            assert!(block.contains(&field), "{field} not in\n{block}");
        }
    }
    // The seed's GUIDs: version 8, and what seeded_guid says.
    assert_eq!(report.disk_guid, cvmkit_gpt::seeded_guid("cvmkit-test", "gpt-disk"));
    assert_eq!(
        report.partitions[2].unique_guid,
        cvmkit_gpt::seeded_guid("cvmkit-test", "gpt-partition-3")
    );
    assert!(report
        .partitions
        .iter()
        .all(|p| p.unique_guid.version() == 8));
    // Root partitions: image size rounded up to 1 MiB; the disk ends 1 MiB after the data.
    assert_eq!(report.partitions[1].size, 3 << 20);
    assert_eq!(report.partitions[2].size, 1 << 20);
    assert_eq!(
        report.disk_size,
        report.partitions[3].offset + (16 << 20) + (1 << 20)
    );
}

#[test]
fn esp_passes_fsck_and_mtools_reads_the_uki() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = full_spec(tmp.path());
    let (disk, report) = build(&spec, Format::Raw, tmp.path(), "disk.raw");
    let esp = &report.partitions[0];
    let esp_img = tmp.path().join("esp.img");
    run(Command::new("dd")
        .arg(format!("if={}", disk.display()))
        .arg(format!("of={}", esp_img.display()))
        .args(["bs=1M", "status=none"])
        .arg(format!("skip={}", esp.offset >> 20))
        .arg(format!("count={}", esp.size >> 20)));

    let fsck = run_text(
        Command::new(require_tool("fsck.vfat", "dosfstools"))
            .args(["-n", "-v"])
            .arg(&esp_img),
    );
    assert!(fsck.contains("2 FATs, 32 bit entries"), "{fsck}");
    assert!(
        fsck.contains(&format!("{} bytes per cluster", report.esp.cluster_size)),
        "{fsck}"
    );

    let mut mdir = Command::new(require_tool("mdir", "mtools"));
    mdir.arg("-i").arg(&esp_img).arg("::/EFI/BOOT");
    let listing = run_text(&mut mdir);
    let uki_len = std::fs::metadata(example_uki()).unwrap().len();
    assert!(
        listing.contains("BOOTX64  EFI") && listing.contains("2023-11-14  22:13"),
        "{listing}"
    );
    assert!(listing.contains("Volume in drive : is ESP"), "{listing}");
    let serial = format!(
        "{:04X}-{:04X}",
        report.esp.volume_id >> 16,
        report.esp.volume_id & 0xFFFF
    );
    assert!(listing.contains(&serial), "{serial} not in\n{listing}");

    let mut mtype = Command::new(require_tool("mtype", "mtools"));
    mtype.arg("-i").arg(&esp_img).arg("::/EFI/BOOT/BOOTX64.EFI");
    let out = run(&mut mtype);
    assert_eq!(out.stdout.len() as u64, uki_len);
    assert!(
        out.stdout == std::fs::read(example_uki()).unwrap(),
        "mtype output differs from the UKI"
    );
}

#[test]
fn own_readers_see_every_partition_and_the_uki() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = full_spec(tmp.path());
    let (disk, report) = build(&spec, Format::Raw, tmp.path(), "disk.raw");
    let bytes = std::fs::read(&disk).unwrap();
    let gpt = GptDisk::read(&bytes).unwrap();
    let parts: Vec<_> = gpt.partitions().collect();
    assert_eq!(parts.len(), 4);
    for (p, r) in parts.iter().zip(&report.partitions) {
        assert_eq!(
            (p.index, p.entry.name(), p.entry.offset(), p.entry.size()),
            (r.number, r.name.clone(), r.offset, r.size)
        );
    }
    let fat = FatVolume::parse(gpt.partition_data(&parts[0].entry).unwrap()).unwrap();
    let uki = fat.lookup("EFI/BOOT/BOOTX64.EFI").unwrap();
    assert_eq!(
        fat.read_file(&uki).unwrap(),
        std::fs::read(example_uki()).unwrap()
    );
    assert_eq!(
        report.esp.uki_offset,
        parts[0].entry.offset() + fat.cluster_offset(uki.first_cluster)
    );
    assert_eq!(report.esp.uki_offset % 4096, 0);
    // Root images copied verbatim, zero-padded to the partition end; the data partition is empty.
    for (i, root) in spec.roots.iter().enumerate() {
        let data = gpt.partition_data(&parts[i + 1].entry).unwrap();
        let image = std::fs::read(root).unwrap();
        assert_eq!(&data[..image.len()], &image[..]);
        assert!(data[image.len()..].iter().all(|&b| b == 0));
    }
    assert!(gpt
        .partition_data(&parts[3].entry)
        .unwrap()
        .iter()
        .all(|&b| b == 0));
}

#[test]
fn a_2_gib_raw_disk_is_sparse() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = DiskSpec {
        disk_size: Some(2 << 30),
        ..DiskSpec::new(example_uki(), "sparse", 0)
    };
    let (disk, report) = build(&spec, Format::Raw, tmp.path(), "disk.raw");
    let meta = std::fs::metadata(&disk).unwrap();
    assert_eq!(meta.len(), 2 << 30);
    let uki_len = std::fs::metadata(example_uki()).unwrap().len();
    let allocated = meta.blocks() * 512;
    // The UKI, the FAT metadata and the two GPT copies: far less than the disk.
    assert!(
        allocated < uki_len + (4 << 20),
        "{allocated} bytes allocated for a {uki_len}-byte UKI"
    );
    assert!(report.data_bytes < uki_len + (1 << 20));
    let sg = run_text(
        Command::new(require_tool("sgdisk", "gdisk"))
            .arg("-v")
            .arg(&disk),
    );
    assert!(sg.contains("No problems found"), "{sg}");
}
